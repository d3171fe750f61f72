"""Spec for text the database cannot store (issue 17, item 7): refused with where it is, never a 500."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from services.metering.domain.validation import Malformed, read_record
from shared.contracts.usage import UsageRecord
from shared.http_text import RejectUnstorableText, first_unstorable

USAGE = {"event_id": "e-1", "source": "ninjaone", "tenant_id": "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b",
         "company_ref": "acme", "service_ref": "rmm", "quantity": "1",
         "occurred_at": "2026-01-05T10:00:00Z"}  # fmt: skip


def app() -> FastAPI:
    api = FastAPI()

    @api.post("/things")
    async def things(body: dict[str, object]) -> dict[str, object]:
        return body

    @api.get("/things")
    async def listing(name: str = "") -> dict[str, str]:
        return {"name": name}

    api.add_middleware(RejectUnstorableText)
    return api


async def call(method: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        return await client.request(method, path, **kw)  # type: ignore[arg-type]


class TestTheMiddleware:
    async def test_a_nul_in_a_nested_name_is_a_422_naming_its_path(self) -> None:
        body = json.dumps({"users": [{"name": "ok"}, {"name": "Pat\u0000"}]})
        answer = await call("POST", "/things", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "users", 1, "name"]

    async def test_an_unpaired_surrogate_is_refused_too(self) -> None:
        body = '{"description": "broken \\ud800 text"}'
        answer = await call("POST", "/things", content=body, headers={"content-type": "application/json"})
        assert (answer.status_code, answer.json()["detail"][0]["loc"]) == (422, ["body", "description"])

    async def test_a_paired_surrogate_is_an_ordinary_character(self) -> None:
        body = '{"description": "a smile \\ud83d\\ude00"}'
        answer = await call("POST", "/things", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 200
        assert answer.json() == {"description": "a smile \U0001f600"}

    async def test_a_nul_in_a_filter_is_a_422_naming_the_parameter(self) -> None:
        answer = await call("GET", "/things?name=a%00b")
        assert (answer.status_code, answer.json()["detail"][0]["loc"]) == (422, ["query", "name"])

    async def test_an_ordinary_body_passes_through_unchanged(self) -> None:
        answer = await call("POST", "/things", json={"name": "Acme Dental"})
        assert answer.json() == {"name": "Acme Dental"}


class TestOverKafka:
    def test_metering_dead_letters_a_nul_naming_the_field(self) -> None:
        raw = json.dumps(USAGE | {"company_ref": "ac\u0000me"}).encode()
        refused = read_record(raw, UsageRecord, "event_id")
        assert isinstance(refused, Malformed)
        assert (refused.code, refused.field) == ("unstorable_text", "company_ref")

    def test_first_unstorable_finds_keys_too(self) -> None:
        assert first_unstorable({"attributes": {"k\u0000": 1}}) == ("attributes", "k\u0000")
