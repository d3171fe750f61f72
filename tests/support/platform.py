"""Test-side clients of the running platform: the catalog API, publishing, reading topics, SQL as a role."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.services import SERVICES, service
from shared.stack.stack import Stack
from shared.topics import by_name


@dataclass
class Tenant:
    """A fresh sandbox tenant with one client, one Usage service at a flat rate, one plan, one assignment."""

    tenant_id: UUID
    company_id: UUID
    company_ref: str
    service_ref: str
    rate: str
    currency: str = "GBP"
    token: str = ""
    api_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Platform:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.catalog = httpx.AsyncClient(
            base_url=stack.url(service("catalog")),
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            timeout=180.0,
        )
        self.approvals = httpx.AsyncClient(base_url=stack.url(service("approvals")), timeout=60.0)
        self._producer: AIOKafkaProducer | None = None

    async def reconnect(self) -> None:
        """After the broker restarted: drop the producer (its connections point at the old broker)."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def close(self) -> None:
        await self.catalog.aclose()
        await self.approvals.aclose()
        if self._producer is not None:
            await self._producer.stop()

    # -- catalog ---------------------------------------------------------------------------------
    async def put(self, path: str, body: dict[str, Any], *, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = await self.catalog.put(path, json=body, headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def token_for(self, api_key: str) -> str:
        response = await self.catalog.post("/v1/auth/token", json={"api_key": api_key})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def new_tenant(
        self, *, mode: str = "sandbox", timezone: str = "Europe/London", currency: str = "GBP"
    ) -> tuple[UUID, str, str]:
        """A tenant and its admin, through the platform operator; returns (tenant_id, api key, token)."""
        t = uuid.uuid4()
        await self.put(
            f"/v1/tenants/{t}",
            {
                "tenant_id": str(t),
                "name": "Northwind IT",
                "mode": mode,
                "timezone": timezone,
                "base_currency": currency,
            },
        )
        issued = await self.catalog.post(
            f"/v1/tenants/{t}/admin-keys", json={"email": "it@northwind.example", "name": "Pat Admin"}
        )
        assert issued.status_code == 200, issued.text
        api_key: str = issued.json()["api_key"]
        return t, api_key, await self.token_for(api_key)

    async def sandbox_tenant(
        self,
        *,
        rate: str = "12.50",
        currency: str = "GBP",
        anchor: str = "2026-01-01",
        timezone: str = "Europe/London",
        plan_line: dict[str, Any] | None = None,
        mode: str = "sandbox",
        frequency: str = "monthly",
    ) -> Tenant:
        """``plan_line`` adds fields (prices, pricing, …) to the plan's one line from its first version, so
        rating never prices with an older line. ``mode="live"``: the same client on the wall clock."""
        t, api_key, token = await self.new_tenant(mode=mode, timezone=timezone, currency=currency)
        c, s, p, a = (uuid.uuid4() for _ in range(4))
        ref = f"acme-{c.hex[:6]}"
        company = {
            "company_id": str(c),
            "company_ref": ref,
            "name": "Acme Dental",
            "billing_email": "ap@acme.example",
            "region": "GB",
            "currency": currency,
            "payment_terms_days": 30,
            "billing_anchor": anchor,
            "refs": [{"source": "ninjaone", "ref": f"ninja-{ref}"}],
        }
        service = {
            "service_id": str(s),
            "code": "managed-device",
            "name": "Managed device",
            "service_type": "Usage",
            "default_rate": rate,
            "currency": currency,
            "unit": "device",
        }
        plan = {
            "plan_id": str(p),
            "name": "Managed devices",
            "plan_type": "usage-based",
            "billing_frequency": frequency,
            "currency": currency,
            "lines": [{"service_id": str(s)} | (plan_line or {})],
        }
        assignment = {"assignment_id": str(a), "company_id": str(c), "plan_id": str(p), "start_date": anchor}
        await self.put(f"/v1/companies/{c}", company, token=token)
        await self.put(f"/v1/services/{s}", service, token=token)
        await self.put(f"/v1/plans/{p}", plan, token=token)
        await self.put(f"/v1/assignments/{a}", assignment, token=token)
        return Tenant(t, c, ref, "managed-device", rate, currency, token=token, api_key=api_key)

    async def add_user(self, tenant: Tenant, role: str, *, user_ref: str | None = None) -> tuple[UUID, str]:
        """A staff user of ``role`` in ``tenant``, created by its admin; returns (user_id, bearer token)."""
        user_id = uuid.uuid4()
        await self.put(
            f"/v1/users/{user_id}",
            {
                "user_id": str(user_id),
                "email": f"{role}-{user_id.hex[:6]}@msp.example",
                "name": role.replace("_", " ").title(),
                "role": role,
                "kind": "staff",
                "user_ref": user_ref,
            },
            token=tenant.token,
        )
        issued = await self.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
        assert issued.status_code == 200, issued.text
        return user_id, await self.token_for(issued.json()["api_key"])

    async def advance_clock(self, tenant: Tenant, to: str) -> dict[str, Any]:
        response = await self.catalog.post("/v1/test-clock/advance", json={"to": to}, headers=tenant.auth)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def advance_clock_settled(
        self, tenant: Tenant, to: str, *, timeout_s: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Advance and wait until everything the tick caused is done ("settle": true): (status, body), 200
        with ``settled`` true, or 202 with ``settled`` false and what is ``behind`` after ``timeout_s``."""
        body: dict[str, Any] = {"to": to, "settle": True}
        if timeout_s is not None:
            body["settle_timeout_s"] = timeout_s
        response = await self.catalog.post("/v1/test-clock/advance", json=body, headers=tenant.auth)
        assert response.status_code in (200, 202), response.text
        result: dict[str, Any] = response.json()
        return response.status_code, result

    # -- readiness (every service's GET /v1/readiness) ---------------------------------------------
    async def readiness(
        self, tenant: Tenant | str, service_name: str, *, wait_s: float = 0.0, **client: str
    ) -> dict[str, Any]:
        """One service's readiness for the tenant (and a client: ``company_id=`` or ``company_ref=``),
        waiting up to ``wait_s``. ``tenant`` is a `Tenant` or a bearer token."""
        token = tenant.token if isinstance(tenant, Tenant) else tenant
        async with httpx.AsyncClient(base_url=self.stack.url(service(service_name)), timeout=60.0) as api:
            response = await api.get(
                "/v1/readiness",
                params={"wait": str(wait_s), **client},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_ready(self, tenant: Tenant | str, *service_names: str, wait_s: float = 30.0, **client: str) -> None:
        """Wait until each named service (every service when none is named) is ready for the tenant (and a
        client), as an integrator would before calling them: fails naming what is still missing."""
        names = service_names or tuple(s.name for s in SERVICES)
        answers = await asyncio.gather(*(self.readiness(tenant, n, wait_s=wait_s, **client) for n in names))
        missing = {a["service"]: a["missing"] for a in answers if not a["ready"]}
        assert not missing, f"not ready after {wait_s}s: {missing}"

    # -- tax-currency and invoicing (additive) ----------------------------------------------------
    async def tax_rate(
        self, tenant: Tenant, *, region: str = "GB", name: str = "VAT", rate: str = "20", **extra: Any
    ) -> dict[str, Any]:
        """A tax rate row in tax-currency (from 2020-01-01): without one for the client's region, invoicing
        holds the invoice with ``missing_tax_rate`` rather than issue it untaxed."""
        body = {"tax_rate_id": str(uuid.uuid4()), "region": region, "name": name, "rate": rate,
                "valid_from": "2020-01-01"} | extra  # fmt: skip
        async with httpx.AsyncClient(base_url=self.stack.url(service("tax_currency")), timeout=60.0) as api:
            response = await api.put(f"/v1/tax-rates/{body['tax_rate_id']}", json=body, headers=tenant.auth)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def invoicing_api(self) -> httpx.AsyncClient:
        """The invoicing operator API (close it after use)."""
        return httpx.AsyncClient(base_url=self.stack.url(service("invoicing")), timeout=60.0)

    # -- publishing ------------------------------------------------------------------------------
    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self.stack.bootstrap, acks="all")
            await self._producer.start()
        return self._producer

    async def publish(self, topic: str, value: dict[str, Any] | bytes, *, key: str) -> None:
        payload = value if isinstance(value, bytes) else json.dumps(value).encode()
        await (await self.producer()).send_and_wait(topic, payload, key=key.encode())

    def usage(
        self,
        tenant: Tenant,
        *,
        quantity: str = "3",
        occurred_at: str = "2026-01-15T10:00:00+00:00",
        event_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "event_id": event_id or f"evt-{uuid.uuid4().hex[:12]}",
            "source": "ninjaone",
            "tenant_id": str(tenant.tenant_id),
            "company_ref": tenant.company_ref,
            "service_ref": tenant.service_ref,
            "quantity": quantity,
            "unit": "device",
            "occurred_at": occurred_at,
        } | extra

    async def send_usage(self, tenant: Tenant, record: dict[str, Any] | bytes) -> None:
        await self.publish("billing.usage.v1", record, key=f"{tenant.tenant_id}:{tenant.company_ref}")

    # -- reading ---------------------------------------------------------------------------------
    async def messages(
        self,
        topic: str,
        *,
        where: Callable[[dict[str, Any]], bool],
        count: int = 1,
        timeout_s: float = 60.0,
        settle_s: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Read ``topic`` from the beginning until ``count`` messages match (then ``settle_s`` longer)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(by_name(topic).partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + timeout_s
            settle_until: float | None = None
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        doc = json.loads(r.value)
                        if where(doc):
                            found.append(doc)
                if len(found) >= count:
                    settle_until = settle_until or time.monotonic() + settle_s
                    if time.monotonic() >= settle_until:
                        break
            return found
        finally:
            await consumer.stop()

    async def invoices(
        self, tenant: Tenant, *, count: int = 1, timeout_s: float = 60.0, settle_s: float = 0.0
    ) -> list[dict[str, Any]]:
        return await self.messages(
            "billing.invoices.v1",
            where=lambda d: d["tenant_id"] == str(tenant.tenant_id),
            count=count,
            timeout_s=timeout_s,
            settle_s=settle_s,
        )

    async def dead_letters(
        self, topic: str, tenant: Tenant | None, *, count: int = 1, timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        tid = str(tenant.tenant_id) if tenant else None
        return await self.messages(
            f"{topic}.dlq", where=lambda d: d.get("tenant_id") == tid, count=count, timeout_s=timeout_s
        )

    # -- SQL -----------------------------------------------------------------------------------
    async def connect(self, service_name: str, *, owner: bool = False, admin: bool = False) -> asyncpg.Connection:
        if admin:
            return await asyncpg.connect(self.stack.admin_dsn)
        return await asyncpg.connect(self.stack.dsn(service(service_name), owner=owner))

    async def fetch_as_tenant(self, service_name: str, tenant: Tenant, query: str, *args: Any) -> list[Any]:
        """Rows ``query`` returns as ``service_name``'s app role, inside ``tenant``'s transaction (RLS on)."""
        conn = await self.connect(service_name)
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant.tenant_id))
                return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def value_as_tenant(self, service_name: str, tenant: Tenant, query: str, *args: Any) -> Any:
        """The first column of the first row of `fetch_as_tenant`."""
        rows = await self.fetch_as_tenant(service_name, tenant, query, *args)
        return rows[0][0] if rows else None

    async def wait_for(self, probe: Callable[[], Any], *, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = await probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.2)


def as_date(text: str) -> date:
    return date.fromisoformat(text)


def as_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
