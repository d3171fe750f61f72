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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.demo import reading, records
from shared.demo.api import Api, DemoError, Endpoints, until
from shared.demo.mailsink import MailSink
from shared.demo.scenario import Scenario
from shared.demo.summary import DemoSummary, Held

__all__ = ["DemoError", "Endpoints", "run_demo"]

Say = Callable[[str], None]


def _midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


class Demo:
    """The demo's steps, each a method; they fill in ``summary`` as they go."""

    def __init__(self, endpoints: Endpoints, scenario: Scenario, out_dir: Path) -> None:
        self.e, self.s, self.out_dir = endpoints, scenario, out_dir
        self.api = Api(endpoints)
        self.approver: dict[str, str] = {}
        self.month = records.month_records(scenario.tenant_id, scenario.month_start, scenario.days)
        self.first_time = True  # False once the catalog has the service added midway (an earlier run)
        self.summary = DemoSummary(
            tenant_id=str(scenario.tenant_id), msp=scenario.name, month=scenario.month_start.strftime("%B %Y")
        )

    async def create_msp(self) -> None:
        """As the platform operator (what `msp bootstrap` does): the sandbox tenant and an admin key."""
        s, operator = self.s, {"Authorization": f"Bearer {self.e.operator_token}"}
        tenant = {"tenant_id": str(s.tenant_id), "name": s.name, "mode": "sandbox", "timezone": s.timezone,
                  "base_currency": s.base_currency}  # fmt: skip
        await self.api.call("catalog", "PUT", f"/v1/tenants/{s.tenant_id}", auth=operator, json=tenant)
        admin = {"email": s.admin_email, "name": "Northwind admin"}
        issued = await self.api.call("catalog", "POST", f"/v1/tenants/{s.tenant_id}/admin-keys", auth=operator,
                                     json=admin)  # fmt: skip
        self.summary.api_key = issued.json()["api_key"]
        self.api.admin = await self.api.token(self.summary.api_key)

    async def import_catalog(self, document: dict[str, Any]) -> None:
        headers = self.api.admin | {"content-type": "application/json"}
        await self.api.call("catalog", "POST", "/v1/catalog/import", auth=headers, content=json.dumps(document))

    async def load_catalog(self) -> None:
        """The catalog document; the first time without the service the RMM reports before it exists."""
        found = await self.api.json("catalog", "/v1/services", params={"code": self.s.added_midway})
        self.first_time = not found["items"]
        await self.import_catalog(self.s.catalog_before_midway() if self.first_time else self.s.catalog)
        key = await self.api.call("catalog", "POST", f"/v1/users/{self.s.approver}/api-keys")
        self.approver = await self.api.token(key.json()["api_key"])

    async def configure_tax_and_currencies(self) -> None:
        for rate in self.s.tax_rates:
            await self.api.eventually("tax_currency", "PUT", f"/v1/tax-rates/{rate['tax_rate_id']}", json=rate,
                                      what=f"tax-currency to take the {rate['region']} rate")  # fmt: skip
        for fx in self.s.exchange_rates:
            code, body = fx["currency"], {"rate": fx["rate"], "source": fx["source"]}
            await self.api.eventually("tax_currency", "PUT", f"/v1/currencies/{code}", json={"active": True},
                                      what=f"tax-currency to activate {code}")  # fmt: skip
            await self.api.eventually("tax_currency", "PUT", f"/v1/exchange-rates/{code}/{fx['rate_date']}",
                                      json=body, what=f"the {code} exchange rate")  # fmt: skip

    async def configure_notifications(self, sink: MailSink) -> None:
        body = {"smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_from": self.s.smtp_from,
                "smtp_from_name": self.s.name, "smtp_starttls": False}  # fmt: skip
        await self.api.eventually("notification", "PUT", "/v1/notification-settings", json=body,
                                  what="notification to know the tenant")  # fmt: skip

    async def advance(self, to: str) -> bool:
        """Advance the sandbox's test clock (catalog first waits for every consumer to catch up). False when the
        clock was already there or past it: an earlier run advanced it."""
        for _ in range(5):
            response = await self.api.http["catalog"].post(
                "/v1/test-clock/advance", json={"to": to}, headers=self.api.admin
            )
            if response.status_code == 200:
                return True
            if response.status_code == 409:  # a sandbox answers 409 only when the clock is there or past it
                return False
            if response.status_code != 503:  # 503: consumers still busy; ask again
                raise DemoError(
                    f"catalog: advancing the clock to {to} answered {response.status_code}: {response.text}"
                )
        raise DemoError("the consumers did not catch up with the month's records; see the service logs")

    async def start_month(self) -> None:
        async def rules() -> int | None:
            found = await self.api.http["approvals"].get("/v1/approval-rules", headers=self.api.admin)
            ok = found.status_code == 200 and bool(found.json().get("rules"))
            return int(found.json()["version"]) if ok else None

        version = await until(rules, what="the tenant's default approval rules")

        async def metering_holds_them() -> bool:
            # metering's copy of approvals.rules.v1: time entries sent from now on meet the "over 8 hours" rule
            found = await self.api.http["metering"].get("/v1/approval-rules", headers=self.api.admin)
            return found.status_code == 200 and int(found.json()["version"]) >= version

        await until(metering_holds_them, what="metering to receive the approval rules (approvals.rules.v1)")
        await self.advance(_midnight(self.s.month_start))

    async def publish(self, outgoing: list[records.Outgoing]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.e.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            sent = []
            for o in outgoing:
                value = o.value if isinstance(o.value, bytes) else json.dumps(o.value).encode()
                sent.append(await producer.send(o.topic, value, key=o.key.encode()))
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        self.summary.published += len(outgoing)
        self.summary.duplicates += sum(o.note == "duplicate" for o in outgoing)
        self.summary.malformed += sum(o.note == "malformed" for o in outgoing)

    async def first_half(self) -> None:
        """The first fortnight; the first time, its backup records wait unmapped until the catalog has the
        service (and Acme's plan sells it), which the demo then adds."""
        half = [o for o in self.month if o.half == 1]
        await self.publish(half)
        if not self.first_time:
            return
        expected = sum(isinstance(o.value, dict) and o.value.get("service_ref") == self.s.added_midway for o in half)

        async def unmapped() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await self.api.json("metering", "/v1/unmapped"))["records"]
            return found

        async def all_waiting() -> list[dict[str, Any]] | None:
            found = await unmapped()
            return found if len(found) >= expected else None

        found = await until(all_waiting, what=f"{expected} unmapped {self.s.added_midway} records in metering")
        self.summary.unmapped = len(found)
        self.summary.unmapped_reason = ", ".join(sorted({str(r.get("reason_code")) for r in found}))
        await self.import_catalog(self.s.catalog)

        async def mapped() -> bool:
            return not await unmapped()

        await until(mapped, what=f"metering to map the {self.s.added_midway} records")

    async def second_half(self) -> None:
        await self.publish([o for o in self.month if o.half == 2])

    async def approve_held(self) -> None:
        """Approve, as the billing manager, every time entry the approvals rules held; wait for their release."""
        expected = sum(1 for e in records.BIRCH + records.CEDAR if e.billable and e.minutes > 8 * 60)

        async def requested() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (
                await self.api.json("approvals", "/v1/approvals", params={"item_type": "time_entry"})
            )["items"]
            return items if len(items) >= expected else None

        await until(requested, what=f"{expected} time entries held for approval")
        for request in await self.api.json("approvals", "/v1/approvals/pending", auth=self.approver):
            comment = {"comment": "Agreed with the client: weekend server migration"}
            await self.api.call("approvals", "POST", f"/v1/approvals/{request['request_id']}/approve",
                                auth=self.approver, json=comment)  # fmt: skip

        async def released() -> bool:
            return not (await self.api.json("metering", "/v1/held"))["records"]

        await until(released, what="metering to release the approved entries")
        decided = await self.api.json("approvals", "/v1/approvals", params={"item_type": "time_entry"})
        self.summary.held = [
            Held(r["item_id"], r["summary"], f"{r['trigger_value']}", r["status"], self.who(r["decided_by"]))
            for r in decided["items"]
        ]

    def who(self, actor: str | None) -> str:
        """``user:<id>`` as the user's name and role, from the scenario's catalog."""
        for user in self.s.catalog.get("users", []):
            if actor == f"user:{user['user_id']}":
                return f"{user['name']} ({user['role'].replace('_', ' ')})"
        return actor or ""

    async def close_month(self) -> None:
        self.summary.month_closed_now = await self.advance(_midnight(self.s.month_end))

    async def read_back(self) -> None:
        rows = await reading.invoices_of(self.api, self.s.month_start, len(self.s.companies))
        views = [await reading.read_invoice(self.api, str(r["invoice_id"]), self.out_dir) for r in rows]
        self.summary.invoices = sorted(views, key=lambda i: i.company_ref)
        issued = sum(i.status in reading.ISSUED for i in views)
        self.summary.notifications = await reading.notifications(self.api, issued)
        self.summary.dead_letters = await reading.dead_letters(self.api)


async def run_demo(endpoints: Endpoints, scenario: Scenario, *, out_dir: Path, say: Say = print) -> DemoSummary:
    """The whole demo; each step announces itself (and how long it took) through ``say``."""
    demo = Demo(endpoints, scenario, out_dir)
    sink = MailSink()
    sink.start()
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        (f"Creating the sandbox MSP {scenario.name}", demo.create_msp),
        ("Loading the catalog (clients, services, bundle, plans, discount, users)", demo.load_catalog),
        ("Tax rates for GB and IE, EUR and its exchange rate in tax-currency", demo.configure_tax_and_currencies),
        (f"Notification sender → local mail sink on 127.0.0.1:{sink.port}", lambda: demo.configure_notifications(sink)),
        (f"Starting the test clock at {scenario.month_start}", demo.start_month),
        (f"Publishing the month's first half ({scenario.added_midway} is not in the catalog yet)", demo.first_half),
        ("Publishing the second half", demo.second_half),
        ("Approving the long time entries as the billing manager", demo.approve_held),
        (f"Advancing the clock past month end to {scenario.month_end}", demo.close_month),
        ("Reading invoices, PDFs, notifications and dead letters", demo.read_back),
    ]  # fmt: skip
    try:
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
        demo.summary.urls = dict(endpoints.urls)
        return demo.summary
    finally:
        sink.stop()
        await demo.api.close()
