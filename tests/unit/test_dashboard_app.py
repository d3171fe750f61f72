"""The dashboard app in-process, with the services answered by a stand-in transport: sign-in, the session
cookie, role-based actions, the services' refusals shown in their own words, and security headers. The
real services are exercised by tests/browser."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from shared.auth import Principal, TokenIssuer, generate_key_pair
from shared.contracts.catalog import Role

PRIVATE, PUBLIC = generate_key_pair()
TENANT = uuid.uuid4()
SERVICE = {"service_id": str(uuid.uuid4()), "code": "managed-device", "name": "Managed device",
           "service_type": "Usage", "default_rate": "12.50", "currency": "GBP", "unit": "device", "active": True,
           "category_id": None}  # fmt: skip


def token(role: Role) -> str:
    principal = Principal(uuid.uuid4(), TENANT, role)
    return TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(
        principal, now=datetime.now(UTC), ttl=timedelta(hours=1)
    )


KEYS = {"key-admin": token(Role.ADMIN), "key-viewer": token(Role.VIEWER)}
Handler = Callable[[httpx.Request], httpx.Response]


def services(extra: dict[tuple[str, str], Handler] | None = None) -> httpx.MockTransport:
    """Catalog as far as these tests need it: the token exchange and the service and category lists."""

    def answer(request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        wanted = next((extra[r] for r in (route, (request.method, "*")) if extra and r in extra), None)
        if wanted is not None:
            return wanted(request)
        if route == ("POST", "/v1/auth/token"):
            key = json.loads(request.content)["api_key"]
            if key in KEYS:
                return httpx.Response(200, json={"access_token": KEYS[key], "expires_in": 3600})
            return httpx.Response(401, json={"detail": "unknown or revoked API key"})
        if route == ("GET", "/v1/services"):
            return httpx.Response(200, json={"items": [SERVICE], "next_after": None})
        if route == ("GET", "/v1/categories"):
            return httpx.Response(200, json={"items": [], "next_after": None})
        return httpx.Response(404, json={"detail": f"no route {route}"})

    return httpx.MockTransport(answer)


def client(transport: httpx.MockTransport) -> httpx.AsyncClient:
    settings = DashboardSettings(session_secret="s" * 40, auth_public_keys=json.dumps({"k1": PUBLIC}))
    app = create_app(settings, transport=transport)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test")


async def post_signin(browser: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """What a browser does: open the sign-in form, then post it back with the form's one-time token."""
    form = (await browser.get("/signin")).text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, "the sign-in form carries a one-time token"
    return await browser.post("/signin", data={"csrf": token.group(1), **fields})


@asynccontextmanager
async def signed_in(key: str, transport: httpx.MockTransport | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with client(transport or services()) as browser:
        response = await post_signin(browser, api_key=key, next="/catalog/services")
        assert response.status_code == 303, response.text
        yield browser


class TestSignIn:
    async def test_a_page_without_a_sign_in_sends_the_browser_to_the_sign_in_form(self) -> None:
        async with client(services()) as browser:
            response = await browser.get("/invoices?status=held")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?next=/invoices%3Fstatus%3Dheld"

    async def test_the_page_asked_for_keeps_every_query_parameter_through_sign_in(self) -> None:
        async with client(services()) as browser:
            sent_to = (await browser.get("/reports?group_by=client&from=2026-01-01")).headers["location"]
            form = (await browser.get(sent_to)).text
        assert 'name="next" value="/reports?group_by=client&amp;from=2026-01-01"' in form

    async def test_a_wrong_key_is_refused_with_catalogs_reason(self) -> None:
        async with client(services()) as browser:
            response = await post_signin(browser, api_key="nope")
            still_out = await browser.get("/catalog/services")
        assert response.status_code == 401
        assert "Sign-in refused: unknown or revoked API key" in response.text
        assert still_out.status_code == 303

    async def test_the_session_cookie_is_signed_http_only_and_same_site_strict(self) -> None:
        async with client(services()) as browser:
            response = await post_signin(browser, api_key="key-admin", next="/catalog/services")
        cookie = response.headers["set-cookie"].lower()
        assert response.headers["location"] == "/catalog/services"
        assert cookie.startswith("msp_dashboard=")
        assert "httponly" in cookie
        assert "samesite=strict" in cookie

    @pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example/", "/a\tb"])
    async def test_only_a_local_path_is_followed_after_sign_in(self, target: str) -> None:
        async with client(services()) as browser:
            response = await post_signin(browser, api_key="key-admin", next=target)
        assert response.headers["location"] == "/"

    async def test_a_sign_in_posted_without_the_forms_token_is_refused(self) -> None:
        """Login CSRF: another site's form cannot sign this browser in to the attacker's tenant."""
        async with client(services()) as browser:
            await browser.get("/signin")  # the victim's own form token is in the session; the forged post lacks it
            response = await browser.post("/signin", data={"api_key": "key-admin", "csrf": "forged"})
            still_out = await browser.get("/catalog/services")
        assert response.status_code == 400
        assert "The sign-in form expired" in response.text
        assert still_out.status_code == 303

    async def test_signing_out_forgets_the_token(self) -> None:
        async with signed_in("key-admin") as browser:
            await browser.post("/signout")
            response = await browser.get("/catalog/services")
        assert response.status_code == 303


class TestRoles:
    async def test_an_admin_is_offered_add_edit_and_retire(self) -> None:
        async with signed_in("key-admin") as browser:
            page = (await browser.get("/catalog/services")).text
        assert "Add a service" in page
        assert f"/catalog/services/{SERVICE['service_id']}/retire" in page

    async def test_a_viewer_is_offered_none_of_them(self) -> None:
        async with signed_in("key-viewer") as browser:
            page = (await browser.get("/catalog/services")).text
        assert "managed-device" in page
        assert "Add a service" not in page
        assert "/retire" not in page
        assert 'href="/records"' in page  # viewers may read metering's records

    async def test_a_services_403_is_shown_with_its_own_words_and_status(self) -> None:
        refuse: dict[tuple[str, str], Handler] = {
            ("GET", "/v1/approvals/pending"): lambda _: httpx.Response(
                403, json={"detail": "your role viewer lacks approvals:decide"}
            ),
        }
        async with signed_in("key-admin", services(refuse)) as browser:
            response = await browser.get("/approvals")
        assert response.status_code == 403
        assert "Not allowed." in response.text
        assert "your role viewer lacks approvals:decide" in response.text

    async def test_a_refused_save_shows_the_field_catalog_names(self) -> None:
        def conflict(_: httpx.Request) -> httpx.Response:
            return httpx.Response(409, json={"detail": [{"loc": ["body", "code"], "msg": "code already in use"}]})

        form = {"code": "managed-device", "name": "Again", "service_type": "Usage", "default_rate": "1",
                "currency": "GBP", "unit": "device"}  # fmt: skip
        async with signed_in("key-admin", services({("PUT", "*"): conflict})) as browser:
            response = await browser.post("/catalog/services/new", data=form)
        assert response.status_code == 409
        assert "code: code already in use" in response.text
        assert 'value="Again"' in response.text  # what was typed is kept


class TestPages:
    @pytest.mark.parametrize("path", ["/signin", "/static/style.css"])
    async def test_pages_carry_security_headers(self, path: str) -> None:
        async with client(services()) as browser:
            response = await browser.get(path)
        assert response.status_code == 200
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_text_from_a_service_is_escaped(self) -> None:
        hostile = SERVICE | {"name": "<script>alert(1)</script>"}
        lists: dict[tuple[str, str], Handler] = {
            ("GET", "/v1/services"): lambda _: httpx.Response(200, json={"items": [hostile], "next_after": None})
        }
        async with signed_in("key-admin", services(lists)) as browser:
            page = (await browser.get("/catalog/services")).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    async def test_the_sign_in_form_labels_its_field(self) -> None:
        async with client(services()) as browser:
            page = (await browser.get("/signin")).text
        assert '<label for="api_key">API key</label>' in page
        assert 'id="api_key" name="api_key"' in page


class TestRecordsRatingCannotBillYet:
    """Issue 16: an accepted record that no plan covers must not disappear: the records page lists it."""

    PARKED = {"record_id": str(uuid.uuid4()), "record_type": "usage", "status": "not_billed_yet", "source": "ninjaone",
              "external_id": "evt-28-nov", "company_ref": "acme", "service_ref": "managed-device", "quantity": "50",
              "occurred_at": "2026-11-28T10:00:00+00:00",
              "reason": "no active plan of client 'acme' covers service 'managed-device' on 2026-11-28"}  # fmt: skip

    def routes(self, unrated: Handler) -> dict[tuple[str, str], Handler]:
        empty = {"records": []}
        return {
            ("GET", "/v1/unmapped"): lambda _: httpx.Response(200, json=empty),
            ("GET", "/v1/held"): lambda _: httpx.Response(200, json=empty),
            ("GET", "/v1/dead-letters"): lambda _: httpx.Response(200, json={"dead_letters": []}),
            ("GET", "/v1/unrated"): unrated,
        }

    async def test_the_records_page_lists_them_with_rating_s_reason(self) -> None:
        answer = self.routes(lambda _: httpx.Response(200, json={"records": [self.PARKED]}))
        async with signed_in("key-admin", services(answer)) as browser:
            page = (await browser.get("/records")).text
        assert "Accepted but not billed (1)" in page
        assert "ninjaone/evt-28-nov" in page
        assert "no active plan of client &#39;acme&#39; covers service &#39;managed-device&#39; on 2026-11-28" in page

    async def test_a_role_rating_refuses_is_told_so_rather_than_shown_none(self) -> None:
        answer = self.routes(lambda _: httpx.Response(403, json={"detail": "charges:read required"}))
        async with signed_in("key-viewer", services(answer)) as browser:
            page = (await browser.get("/records")).text
        assert "Your role cannot read rating's records." in page
        assert "Accepted but not billed (?)" in page


class TestCrossOriginPosts:
    """Issue 17: SameSite=strict was the dashboard's only CSRF defence; a post names its origin, and another one is
    refused."""

    async def test_a_post_from_another_origin_is_refused(self) -> None:
        async with signed_in("key-admin") as browser:
            answer = await browser.post("/signout", headers={"origin": "https://evil.example"})
        assert answer.status_code == 403

    async def test_a_post_whose_referer_is_another_site_is_refused(self) -> None:
        async with signed_in("key-admin") as browser:
            answer = await browser.post("/signout", headers={"referer": "https://evil.example/page"})
        assert answer.status_code == 403

    async def test_a_post_from_the_dashboards_own_pages_goes_through(self) -> None:
        async with signed_in("key-admin") as browser:
            answer = await browser.post("/signout", headers={"origin": "http://dashboard.test"})
        assert answer.status_code in (200, 303)
