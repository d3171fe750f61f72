"""Drive the platform through one month for the demo MSP, over its public interfaces only: the HTTP APIs of
catalog, tax-currency, approvals, metering, invoicing and notification, and the public Kafka topics.

Every step is idempotent (fixed ids, PUTs, the same records again), so a second run finds the first run's
invoices rather than making new ones. ``run_demo`` returns a ``DemoSummary``; printing is the caller's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from shared.demo import records
from shared.demo.mailsink import MailSink
from shared.demo.scenario import Scenario
from shared.demo.summary import DemoSummary, Held, InvoiceView, LineView, Refused, Sent

T = TypeVar("T")
Say = Callable[[str], None]
ISSUED = {"finalized", "sent", "viewed", "partially_paid", "paid", "overdue", "disputed"}


class DemoError(RuntimeError):
    """A step did not complete; the message says which and where to look."""


@dataclass(frozen=True)
class Endpoints:
    """Where the platform answers: each service's base URL, the Kafka bootstrap, the operator token."""

    urls: dict[str, str]
    bootstrap: str
    operator_token: str


async def until(probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 120.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.3)


def _at(day: Any) -> str:
    return datetime.combine(day, clock_time(0), tzinfo=UTC).isoformat()


class Demo:
    def __init__(self, endpoints: Endpoints, scenario: Scenario, *, out_dir: Path, say: Say) -> None:
        self.e, self.s, self.out_dir, self.say = endpoints, scenario, out_dir, say
        self.http = {name: httpx.AsyncClient(base_url=url, timeout=180.0) for name, url in endpoints.urls.items()}
        self.admin: dict[str, str] = {}
        self.approver: dict[str, str] = {}
        self.summary = DemoSummary(
            tenant_id=str(scenario.tenant_id), msp=scenario.name, month=scenario.month_start.strftime("%B %Y")
        )

    async def close(self) -> None:
        for client in self.http.values():
            await client.aclose()

    # -- HTTP helpers ----------------------------------------------------------------------------------------
    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        auth: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        response = await self.http[service].request(method, path, headers=auth or self.admin, **kwargs)
        if response.status_code not in ok:
            raise DemoError(f"{service}: {method} {path} answered {response.status_code}: {response.text[:300]}")
        return response

    async def eventually(self, service: str, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """The call until it answers 200: a service learns of a new tenant from catalog events, a moment later."""

        async def attempt() -> httpx.Response | None:
            response = await self.http[service].request(method, path, headers=self.admin, **kwargs)
            return response if response.status_code == 200 else None

        return await until(attempt, what=what, timeout_s=90)

    async def token(self, api_key: str) -> dict[str, str]:
        issued = await self.call("catalog", "POST", "/v1/auth/token", json={"api_key": api_key})
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}

    # -- the steps -------------------------------------------------------------------------------------------
    async def create_msp(self) -> None:
        s, operator = self.s, {"Authorization": f"Bearer {self.e.operator_token}"}
        tenant = {
            "tenant_id": str(s.tenant_id),
            "name": s.name,
            "mode": "sandbox",
            "timezone": s.timezone,
            "base_currency": s.base_currency,
        }
        await self.call("catalog", "PUT", f"/v1/tenants/{s.tenant_id}", auth=operator, json=tenant)
        issued = await self.call(
            "catalog",
            "POST",
            f"/v1/tenants/{s.tenant_id}/admin-keys",
            auth=operator,
            json={"email": s.admin_email, "name": "Northwind admin"},
        )
        self.summary.api_key = issued.json()["api_key"]
        self.admin = await self.token(self.summary.api_key)

    async def load_catalog(self) -> bool:
        """Load the catalog; before the first month, without the service added midway. True if it was held back."""
        found = await self.call("catalog", "GET", "/v1/services", params={"code": self.s.added_midway})
        first_time = not found.json()["items"]
        document = self.s.catalog_before_midway() if first_time else self.s.catalog
        await self.call(
            "catalog",
            "POST",
            "/v1/catalog/import",
            content=json.dumps(document).encode(),
            auth=self.admin | {"content-type": "application/json"},
        )
        key = await self.call("catalog", "POST", f"/v1/users/{self.s.approver}/api-keys")
        self.approver = await self.token(key.json()["api_key"])
        return first_time

    async def configure_tax_and_currencies(self) -> None:
        for rate in self.s.tax_rates:
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/tax-rates/{rate['tax_rate_id']}",
                json=rate,
                what=f"tax-currency to take the {rate['region']} rate",
            )
        for fx in self.s.exchange_rates:
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/currencies/{fx['currency']}",
                json={"active": True},
                what=f"tax-currency to activate {fx['currency']}",
            )
            body = {"rate": fx["rate"], "source": fx["source"]}
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/exchange-rates/{fx['currency']}/{fx['rate_date']}",
                json=body,
                what="the exchange rate",
            )

    async def configure_notifications(self, sink: MailSink) -> None:
        body = {
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
            "smtp_from": self.s.smtp_from,
            "smtp_from_name": self.s.name,
            "smtp_starttls": False,
        }
        await self.eventually(
            "notification", "PUT", "/v1/notification-settings", json=body, what="notification to know the tenant"
        )

    async def advance(self, to: str) -> bool:
        """Advance the sandbox's test clock (catalog waits for every consumer to catch up first). False when
        the clock was already there: an earlier run advanced it."""
        for _ in range(5):
            response = await self.http["catalog"].post("/v1/test-clock/advance", json={"to": to}, headers=self.admin)
            if response.status_code == 200:
                return True
            if response.status_code == 409:  # a sandbox answers 409 only when the clock is there or past it
                return False
            if response.status_code != 503:  # 503: consumers still busy; ask again
                raise DemoError(
                    f"catalog: advancing the clock to {to} answered {response.status_code}: {response.text}"
                )
        raise DemoError("the consumers did not catch up with the month's records; see .local/logs/")

    async def start_month(self) -> None:
        async def rules() -> bool:
            response = await self.http["approvals"].get("/v1/approval-rules", headers=self.admin)
            return response.status_code == 200 and bool(response.json().get("rules"))

        await until(rules, what="the tenant's default approval rules")
        # Approvals publishes the rules through its outbox a moment after they are readable; the advance then
        # waits until every consumer (metering's rules copy included) has caught up, so time entries sent
        # after it meet the "over 8 hours" rule. No public API shows metering's copy, hence the short pause.
        await asyncio.sleep(1.0)
        await self.advance(_at(self.s.month_start))

    async def publish(self, outgoing: list[records.Outgoing]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.e.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            sends = []
            for o in outgoing:
                value = o.value if isinstance(o.value, bytes) else json.dumps(o.value).encode()
                sends.append(await producer.send(o.topic, value, key=o.key.encode()))
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        self.summary.published += len(outgoing)
        self.summary.duplicates += sum(o.note == "duplicate" for o in outgoing)
        self.summary.malformed += sum(o.note == "malformed" for o in outgoing)

    async def unmapped(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.call("metering", "GET", "/v1/unmapped")).json()["records"]
        return found

    async def map_midway(self, expected: int) -> None:
        async def waiting() -> list[dict[str, Any]] | None:
            found = await self.unmapped()
            return found if len(found) >= expected else None

        found = await until(waiting, what=f"{expected} unmapped backup records in metering")
        self.summary.unmapped = len(found)
        self.summary.unmapped_reason = ", ".join(sorted({str(r.get("reason_code")) for r in found}))
        await self.call(
            "catalog",
            "POST",
            "/v1/catalog/import",
            content=json.dumps(self.s.catalog).encode(),
            auth=self.admin | {"content-type": "application/json"},
        )

        async def settled() -> bool:
            return not await self.unmapped()

        await until(settled, what="metering to map the backup records")

    async def approve_held(self, expected: int) -> None:
        async def requested() -> list[dict[str, Any]] | None:
            page = await self.call("approvals", "GET", "/v1/approvals", params={"item_type": "time_entry"})
            items: list[dict[str, Any]] = page.json()["items"]
            return items if len(items) >= expected else None

        await until(requested, what=f"{expected} time entries held for approval")
        pending = (await self.call("approvals", "GET", "/v1/approvals/pending", auth=self.approver)).json()
        for request in pending:
            await self.call(
                "approvals",
                "POST",
                f"/v1/approvals/{request['request_id']}/approve",
                auth=self.approver,
                json={"comment": "Agreed with the client: weekend server migration"},
            )

        async def released() -> bool:
            return not (await self.call("metering", "GET", "/v1/held")).json()["records"]

        await until(released, what="metering to release the approved entries")
        page = await self.call("approvals", "GET", "/v1/approvals", params={"item_type": "time_entry"})
        self.summary.held = [
            Held(r["item_id"], r["summary"], f"{r['trigger_value']}", r["status"], self.who(r["decided_by"]))
            for r in page.json()["items"]
        ]

    def who(self, actor: str | None) -> str:
        """``user:<id>`` as the user's name and role, from the scenario's catalog."""
        for user in self.s.catalog.get("users", []):
            if actor == f"user:{user['user_id']}":
                return f"{user['name']} ({user['role'].replace('_', ' ')})"
        return actor or ""

    async def invoices(self, expected: int) -> list[dict[str, Any]]:
        period = self.s.month_start.isoformat()

        async def done() -> list[dict[str, Any]] | None:
            rows = (await self.call("invoicing", "GET", "/v1/invoices", params={"limit": 500})).json()
            rows = rows["items"] if isinstance(rows, dict) else rows
            ours = [r for r in rows if str(r["period_start"]) == period and r["status"] in ISSUED | {"held"}]
            return ours if len(ours) >= expected else None

        return await until(done, what=f"{expected} invoices for {period}", timeout_s=240)

    async def read_invoice(self, row: dict[str, Any]) -> InvoiceView:
        detail = (await self.call("invoicing", "GET", f"/v1/invoices/{row['invoice_id']}")).json()
        doc = detail.get("document") or {}
        lines = [
            LineView(
                ln["description"],
                ln["quantity"],
                ln.get("unit") or "",
                ln["unit_price"],
                ln["amount"],
                ln["discount_amount"],
                ln["net_amount"],
                ln["tax_amount"],
                ln["total"],
            )
            for ln in doc.get("lines", [])
        ]
        taxes = sorted({f"{t['name']} {t['rate']} %" for ln in doc.get("lines", []) for t in ln["taxes"]})
        discounts = sorted({d["name"] for ln in detail["lines"] for d in ln.get("discounts", [])})
        fx = [f"{f['from_currency']}→{f['to_currency']} {f['rate']} ({f['rate_date']})" for f in doc.get("fx", [])]
        number = detail["invoice_number"] or "(not numbered)"
        pdf = None
        if detail["status"] in ISSUED:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{number}.pdf"
            path.write_bytes((await self.call("invoicing", "GET", f"/v1/invoices/{row['invoice_id']}/pdf")).content)
            pdf = str(path)
        customer = doc.get("customer") or {}
        return InvoiceView(
            client=customer.get("name", detail["company_ref"]),
            company_ref=detail["company_ref"],
            invoice_id=str(detail["invoice_id"]),
            number=number,
            status=detail["status"],
            currency=doc.get("currency", ""),
            issue_date=str(doc.get("issue_date", "")),
            due_date=str(doc.get("due_date", "")),
            lines=lines,
            subtotal=doc.get("subtotal", ""),
            discount_total=doc.get("discount_total", ""),
            tax_total=doc.get("tax_total", ""),
            total=doc.get("total", ""),
            discounts=discounts,
            taxes=taxes,
            fx=fx,
            pdf=pdf,
            held_reason=detail.get("held_reason"),
        )

    async def notifications(self, expected_invoices: int) -> list[Sent]:
        async def delivered() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = (
                await self.call("notification", "GET", "/v1/notifications", params={"limit": 1000})
            ).json()
            issued = [r for r in rows if r["notification_type"] == "invoice_issued" and r["status"] == "sent"]
            return rows if len(issued) >= expected_invoices else None

        rows = await until(delivered, what="the invoice emails to be sent", timeout_s=120)
        return [Sent(r["notification_type"], r["address"], r["subject"], r["status"]) for r in rows]

    async def refused(self) -> list[Refused]:
        letters = (await self.call("metering", "GET", "/v1/dead-letters")).json()["dead_letters"]
        seen: dict[tuple[str, ...], Refused] = {}
        for d in letters:  # a refused record claims no id: a second run refuses it again; show it once
            topic = "billing.usage.v1" if d["record_type"] == "usage" else "billing.time-entries.v1"
            r = Refused(
                topic, d.get("source") or "?", d.get("external_id") or "?", d["code"], d.get("field") or "", d["reason"]
            )
            seen.setdefault((r.topic, r.source, r.record, r.code), r)
        return list(seen.values())


async def run_demo(endpoints: Endpoints, scenario: Scenario, *, out_dir: Path, say: Say = print) -> DemoSummary:
    """The whole demo; each step announces itself through ``say``."""
    demo = Demo(endpoints, scenario, out_dir=out_dir, say=say)
    sink = MailSink()
    sink.start()
    month = records.month_records(scenario.tenant_id, scenario.month_start, scenario.days)
    companies = len(scenario.companies)
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    try:
        first_time: list[bool] = []

        async def catalog() -> None:
            first_time.append(await demo.load_catalog())

        async def first_half() -> None:
            await demo.publish([o for o in month if o.half == 1])
            if first_time[0]:
                backup = sum(1 for o in month if o.half == 1 and o.note == "" and "backup" in str(o.value))
                await demo.map_midway(backup)

        async def close() -> None:
            demo.summary.month_closed_now = await demo.advance(_at(scenario.month_end))

        async def read() -> None:
            rows = await demo.invoices(companies)
            demo.summary.invoices = sorted([await demo.read_invoice(r) for r in rows], key=lambda i: i.company_ref)
            demo.summary.notifications = await demo.notifications(
                sum(i.status in ISSUED for i in demo.summary.invoices)
            )
            demo.summary.dead_letters = await demo.refused()

        held = sum(1 for e in records.BIRCH + records.CEDAR if e.billable and e.minutes > 8 * 60)
        steps = [
            (f"Creating the sandbox MSP {scenario.name}", demo.create_msp),
            ("Loading the catalog (clients, services, bundle, plans, discount, users)", catalog),
            ("Tax rates for GB and IE, EUR and its exchange rate in tax-currency", demo.configure_tax_and_currencies),
            (
                f"Notification sender → local mail sink on 127.0.0.1:{sink.port}",
                lambda: demo.configure_notifications(sink),
            ),
            (f"Starting the test clock at {scenario.month_start}", demo.start_month),
            ("Publishing the month's first half (backup storage is not in the catalog yet)", first_half),
            ("Publishing the second half", lambda: demo.publish([o for o in month if o.half == 2])),
            (f"Approving {held} long time entries as the billing manager", lambda: demo.approve_held(held)),
            (f"Advancing the clock past month end to {scenario.month_end}", close),
            ("Reading invoices, PDFs, notifications and dead letters", read),
        ]
        for n, (title, step) in enumerate(steps, 1):
            started = time.monotonic()
            say(f"[{n:>2}/{len(steps)}] {title} …")
            await step()
            say(f"        done in {time.monotonic() - started:.1f} s")
        demo.summary.mails_received = [
            f"{', '.join(m.to)}: {m.subject.strip()}" + (f" [{', '.join(m.attachments)}]" if m.attachments else "")
            for m in sink.inbox
        ]
        demo.summary.pdf_dir = str(out_dir)
        demo.summary.urls = {name: url for name, url in endpoints.urls.items()}
        return demo.summary
    finally:
        sink.stop()
        await demo.close()
