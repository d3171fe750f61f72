"""Helpers for tax-currency specs: its HTTP API on the running stack, and quote requests over the broker."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.services import service
from tests.support.platform import Platform, Tenant

INVOICE_DATE = "2026-02-01"


def tax_api(platform: Platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.stack.url(service("tax_currency")), timeout=60.0)


def actor_of(tenant: Tenant) -> str:
    """How audit rows name the tenant's admin (the token's subject)."""
    claims = jwt.decode(tenant.token, options={"verify_signature": False})
    return f"user:{claims['sub']}"


async def known_to_tax_currency(platform: Platform, tenant: Tenant) -> None:
    """Wait until tax-currency's catalog view holds the tenant and its client."""

    async def probe() -> bool:
        count = await platform.value_as_tenant(
            "tax_currency",
            tenant,
            "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM companies WHERE company_id = $1)",
            tenant.company_id,
        )
        return bool(count == 2)

    await platform.wait_for(probe, timeout_s=60.0)


def tax_rate(region: str = "GB", name: str = "VAT", rate: str = "20", **extra: Any) -> dict[str, Any]:
    return {"tax_rate_id": str(uuid.uuid4()), "region": region, "name": name, "rate": rate,
            "valid_from": "2020-01-01"} | extra  # fmt: skip


async def put_tax_rate(api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.put(f"/v1/tax-rates/{body['tax_rate_id']}", json=body, headers=tenant.auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def activate(api: httpx.AsyncClient, tenant: Tenant, *codes: str) -> None:
    for code in codes:
        response = await api.put(f"/v1/currencies/{code}", json={"active": True}, headers=tenant.auth)
        assert response.status_code == 200, response.text


async def import_rates(api: httpx.AsyncClient, tenant: Tenant, csv_text: str) -> httpx.Response:
    return await api.post(
        "/v1/exchange-rates/import", content=csv_text.encode(), headers=tenant.auth | {"Content-Type": "text/csv"}
    )


def tax_request(tenant: Tenant, *lines: tuple[str, str | None], **changes: Any) -> dict[str, Any]:
    """A tax.requested for the tenant's client; lines are (amount, tax_category)."""
    return {
        "type": "tax.requested",
        "request_id": str(uuid.uuid4()),
        "tenant_id": str(tenant.tenant_id),
        "invoice_id": str(uuid.uuid4()),
        "company_id": str(tenant.company_id),
        "company_ref": tenant.company_ref,
        "region": "GB",
        "invoice_date": INVOICE_DATE,
        "currency": "GBP",
        "tax_inclusive": False,
        "lines": [{"line_id": str(uuid.uuid4()), "amount": a, "tax_category": c} for a, c in lines],
    } | changes


def conversion_request(tenant: Tenant, *amounts: str, **changes: Any) -> dict[str, Any]:
    return {
        "type": "conversion.requested",
        "request_id": str(uuid.uuid4()),
        "tenant_id": str(tenant.tenant_id),
        "invoice_id": str(uuid.uuid4()),
        "from_currency": "USD",
        "to_currency": "GBP",
        "on": INVOICE_DATE,
        "amounts": [{"line_id": str(uuid.uuid4()), "amount": a} for a in amounts],
    } | changes


async def ask(platform: Platform, request: dict[str, Any]) -> None:
    await platform.publish(topics.TAX_REQUESTS.name, request, key=f"{request['tenant_id']}:{request['invoice_id']}")


@dataclass(frozen=True)
class Answer:
    key: str
    message_id: str
    payload: bytes

    @property
    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.payload)
        return doc


async def answers(
    platform: Platform, request_id: str, *, count: int = 1, timeout_s: float = 60.0, settle_s: float = 0.0
) -> list[Answer]:
    """Records on tax.results.v1 answering ``request_id``, with their key and message-id header."""
    consumer = AIOKafkaConsumer(bootstrap_servers=platform.stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[Answer] = []
    try:
        tps = [TopicPartition(topics.TAX_RESULTS.name, p) for p in range(topics.TAX_RESULTS.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    if json.loads(r.value).get("request_id") == request_id:
                        headers = {k: v.decode() for k, v in (r.headers or ())}
                        found.append(Answer(r.key.decode(), headers.get("message-id", ""), r.value))
            if len(found) >= count:
                settle_until = settle_until or time.monotonic() + settle_s
                if time.monotonic() >= settle_until:
                    break
        return found
    finally:
        await consumer.stop()


async def answer_to(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    await ask(platform, request)
    found = await answers(platform, request["request_id"])
    assert found, f"no answer to {request['request_id']}"
    return found[0].body
