"""Drive the real running stack through its public interfaces only, many scenarios (tenants) in lockstep.

What an MSP and its tools would use: the platform operator creates each tenant and its first admin; the admin
loads the catalog (`POST /v1/catalog/import`), records status changes and later catalog changes, sets up tax
rates, exemptions, currencies and exchange rates in tax-currency; the RMM / licence portal / PSA publish
records on `billing.usage.v1` / `billing.time-entries.v1`; the test clock is advanced to each month's end;
accounting reads `invoice.finalized` from `billing.invoices.v1`.

Lockstep: the clock advance waits until every consumer group of the platform has caught up, so the driver
publishes every scenario's month first, then advances every tenant, then waits for the invoices.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.simulation.scenario import Scenario

T = TypeVar("T")
Say = Callable[[str], None]
INVOICES_TOPIC = "billing.invoices.v1"
TRANSIENT = {"draft", "awaiting_conversion", "awaiting_tax"}
SETTLE = timedelta(seconds=1)
DEAD_LETTERS = ("billing.usage.v1.dlq", "billing.time-entries.v1.dlq")


class DriveError(RuntimeError):
    """A step of driving the platform failed; the message says which."""


@dataclass(frozen=True)
class Endpoints:
    urls: dict[str, str]  # service name -> base URL
    bootstrap: str
    operator_token: str


async def until(probe: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 120.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DriveError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.3)


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=ZoneInfo(tz))


@dataclass
class Run:
    """One scenario on the stack: its tenant's credentials and what came back."""

    scenario: Scenario
    api_key: str = ""
    manager_key: str = ""
    auth: dict[str, str] = field(default_factory=dict)
    manager_auth: dict[str, str] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # invoice_id -> invoice (finalized)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # of its records, from the .dlq topics
    notes: list[str] = field(default_factory=list)  # what went wrong while driving it

    def unexpected_dead_letters(self) -> list[str]:
        """Dead letters of records that were not sent malformed on purpose, one line per kind of reason."""
        malformed = {json.loads(r.value)["event_id"] for r in self.scenario.records if isinstance(r.value, bytes)}
        reasons: dict[str, int] = {}
        for letter in self.dead_letters:
            try:
                record = json.loads(letter.get("payload") or "{}")
            except ValueError:
                record = {}
            if record.get("event_id") in malformed:
                continue
            reason = f"{letter.get('topic')}: {letter.get('error_class')}: {str(letter.get('reason'))[:120]}"
            reasons[reason] = reasons.get(reason, 0) + 1
        return [f"{n} record(s) dead-lettered, {reason}" for reason, n in reasons.items()]

    @property
    def tenant(self) -> str:
        return self.scenario.tenant_id


class _Positions:
    """Where the reader has got to in each partition (what it has handed to the loop, not merely fetched)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.read: dict[TopicPartition, int] = {}

    def last_position(self, tp: TopicPartition) -> int:
        return self.read.get(tp, -1)


class Driver:
    def __init__(self, endpoints: Endpoints, *, say: Say = print) -> None:
        self.e = endpoints
        self.say = say
        self.http = {name: httpx.AsyncClient(base_url=url, timeout=300.0) for name, url in endpoints.urls.items()}
        self.producer: AIOKafkaProducer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._runs: dict[str, Run] = {}

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()
        for client in self.http.values():
            await client.aclose()

    # -- HTTP ---------------------------------------------------------------------------------------
    async def call(
        self, service: str, method: str, path: str, *, auth: dict[str, str], ok: Iterable[int] = (200,), **kw: Any
    ) -> httpx.Response:
        for attempt in range(5):
            try:
                response = await self.http[service].request(method, path, headers=auth, **kw)
            except httpx.TransportError as exc:  # a loaded machine: try again
                if attempt == 4:
                    raise DriveError(f"{service}: {method} {path}: {exc!r}") from exc
                await asyncio.sleep(1)
                continue
            if response.status_code in ok:
                return response
            raise DriveError(f"{service}: {method} {path} answered {response.status_code}: {response.text[:500]}")
        raise AssertionError("unreachable")

    async def eventually(
        self, service: str, method: str, path: str, *, auth: dict[str, str], what: str, **kw: Any
    ) -> Any:
        """The call until it answers 200 (a service learns of a new tenant or client from catalog events)."""

        async def attempt() -> httpx.Response | None:
            response = await self.http[service].request(method, path, headers=auth, **kw)
            return response if response.status_code == 200 else None

        return await until(attempt, what=what, timeout_s=180)

    async def token(self, api_key: str) -> dict[str, str]:
        issued = await self.call("catalog", "POST", "/v1/auth/token", auth={}, json={"api_key": api_key})
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}

    # -- set-up -------------------------------------------------------------------------------------
    async def create_tenant(self, run: Run) -> None:
        s, operator = run.scenario, {"Authorization": f"Bearer {self.e.operator_token}"}
        body = {
            "tenant_id": s.tenant_id,
            "name": s.name,
            "mode": "sandbox",
            "timezone": s.timezone,
            "base_currency": s.base_currency,
        }
        await self.call("catalog", "PUT", f"/v1/tenants/{s.tenant_id}", auth=operator, json=body)
        admin = {"email": f"admin-{s.seed}@msp.example", "name": "Sim admin"}
        issued = await self.call("catalog", "POST", f"/v1/tenants/{s.tenant_id}/admin-keys", auth=operator, json=admin)
        run.api_key = issued.json()["api_key"]
        run.auth = await self.token(run.api_key)

    async def import_catalog(self, run: Run) -> None:
        headers = run.auth | {"content-type": "application/json"}
        await self.call("catalog", "POST", "/v1/catalog/import", auth=headers, content=json.dumps(run.scenario.catalog))
        managers = [u for u in run.scenario.catalog.get("users", []) if u["role"] == "billing_manager"]
        if managers:
            key = await self.call("catalog", "POST", f"/v1/users/{managers[0]['user_id']}/api-keys", auth=run.auth)
            run.manager_key = key.json()["api_key"]
            run.manager_auth = await self.token(run.manager_key)

    async def tax_and_currencies(self, run: Run) -> None:
        s, auth = run.scenario, run.auth
        for rate in s.tax_rates:
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/tax-rates/{rate['tax_rate_id']}",
                auth=auth,
                json=rate,
                what=f"tax-currency to take the {rate['region']} rate",
            )
        for code in s.currencies:
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/currencies/{code}",
                auth=auth,
                json={"active": True},
                what=f"tax-currency to activate {code}",
            )
        for fx in s.exchange_rates:
            await self.call(
                "tax_currency",
                "PUT",
                f"/v1/exchange-rates/{fx.currency}/{fx.rate_date.isoformat()}",
                auth=auth,
                json={"rate": fx.rate, "source": fx.source},
            )
        for ex in s.exemptions:
            await self.eventually(
                "tax_currency",
                "PUT",
                f"/v1/exemptions/{ex['exemption_id']}",
                auth=auth,
                json=ex,
                what="tax-currency to know the exempt client",
            )

    async def rules_in_place(self, run: Run) -> None:
        """Approvals made the tenant's default rules and metering holds them, so every record meets the same
        rules (as the demo does before its clock starts)."""

        async def rules() -> int | None:
            found = await self.http["approvals"].get("/v1/approval-rules", headers=run.auth)
            ok = found.status_code == 200 and bool(found.json().get("rules"))
            return int(found.json()["version"]) if ok else None

        version = await until(rules, what="the tenant's default approval rules", timeout_s=180)

        async def metering_holds_them() -> bool:
            found = await self.http["metering"].get("/v1/approval-rules", headers=run.auth)
            return found.status_code == 200 and int(found.json()["version"]) >= version

        await until(metering_holds_them, what="metering to hold the approval rules", timeout_s=180)

    async def catalog_changes(self, run: Run, month: int, phase: int) -> None:
        for change in run.scenario.changes:
            if change.month == month and change.phase == phase:
                key = {
                    "services": "service_id",
                    "plans": "plan_id",
                    "assignments": "assignment_id",
                    "discounts": "discount_id",
                    "companies": "company_id",
                    "bundles": "bundle_id",
                }[change.collection]
                await self.call(
                    "catalog", "PUT", f"/v1/{change.collection}/{change.body[key]}", auth=run.auth, json=change.body
                )
        if phase == 0:
            for status in run.scenario.statuses:
                if status.month == month:
                    await self.call(
                        "catalog", "POST", f"/v1/companies/{status.company_id}/status", auth=run.auth, json=status.body
                    )

    async def start_of_month(self, run: Run, *, month: int) -> None:
        # a token lives an hour: a long run renews them every month
        run.auth = await self.token(run.api_key)
        if run.manager_key:
            run.manager_auth = await self.token(run.manager_key)
        await self.catalog_changes(run, month, 0)

    async def approve_pending(self, run: Run) -> None:
        """Approve, as the billing manager, whatever waits for approval (discounts over the default rule), until
        the catalog has every discount approved."""
        if not run.manager_auth:
            return

        async def all_approved() -> bool:
            pending = (await self.call("approvals", "GET", "/v1/approvals/pending", auth=run.manager_auth)).json()
            for request in pending:
                await self.call(
                    "approvals",
                    "POST",
                    f"/v1/approvals/{request['request_id']}/approve",
                    auth=run.manager_auth,
                    json={"comment": "agreed with the client"},
                    ok=(200, 409),
                )
            found = (await self.call("catalog", "GET", "/v1/discounts", auth=run.auth, params={"limit": 500})).json()
            return all(d.get("approval_status") == "approved" for d in found["items"])

        await until(all_approved, what=f"the discounts of {run.tenant} to be approved", timeout_s=180)

    # -- records --------------------------------------------------------------------------------------
    async def publish(self, runs: list[Run], month: int, phase: int) -> int:
        if self.producer is None:
            self.producer = AIOKafkaProducer(bootstrap_servers=self.e.bootstrap, acks="all", linger_ms=5)
            await self.producer.start()
        sent = []
        for run in runs:
            for r in run.scenario.records:
                if r.month == month and r.phase == phase:
                    value = r.value if isinstance(r.value, bytes) else json.dumps(r.value).encode()
                    sent.append(await self.producer.send(r.topic, value, key=r.key.encode()))
        await asyncio.gather(*sent)
        return len(sent)

    async def unmapped(self, run: Run) -> int:
        found = (await self.call("metering", "GET", "/v1/unmapped", auth=run.auth)).json()["records"]
        return len(found)

    # -- the clock -------------------------------------------------------------------------------------
    async def advance(self, run: Run, to: datetime, *, settle: bool = False) -> bool:
        """Move the tenant's clock; with ``settle``, the platform answers once everything the tick caused is done
        (closes, invoices, their events relayed). Returns whether it said so."""
        body: dict[str, Any] = {"to": to.isoformat()} | ({"settle": True} if settle else {})
        for _ in range(8):
            response = await self.http["catalog"].post("/v1/test-clock/advance", json=body, headers=run.auth)
            if response.status_code in (200, 202):
                return bool(response.json().get("settled", False))
            if response.status_code == 409 and "cannot move" in response.text:
                return False  # already there
            if response.status_code not in (503, 401):
                raise DriveError(f"advancing {run.tenant} to {to} answered {response.status_code}: {response.text}")
            if response.status_code == 401:
                run.auth = await self.token(run.api_key)
        raise DriveError(f"the consumers never caught up to advance {run.tenant} to {to}")

    # -- invoices ----------------------------------------------------------------------------------------
    async def start_reader(self) -> None:
        """Read `billing.invoices.v1` from its current end on, keeping the `invoice.finalized` of our tenants; and
        the dead-letter topics of the two record topics, keeping our tenants' letters."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.e.bootstrap, enable_auto_commit=False)
        await consumer.start()
        tps = []
        for topic in (INVOICES_TOPIC, *DEAD_LETTERS):
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer.stop()
                raise DriveError(f"no partitions for {topic}")
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        self._reader_partitions = tps
        self._reader_consumer = _Positions(consumer)
        for tp in tps:  # resolve the end now, so nothing published after this call is missed
            self._reader_consumer.read[tp] = await consumer.position(tp)

        async def read() -> None:
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=200)
                    for tp, records in batch.items():
                        if records:
                            self._reader_consumer.read[tp] = records[-1].offset + 1
                        for record in records:
                            doc = json.loads(record.value)
                            run = self._runs.get(str(doc.get("tenant_id")))
                            if run is not None and record.topic in DEAD_LETTERS:
                                run.dead_letters.append(doc)
                            elif run is not None and doc.get("event_type") == "invoice.finalized":
                                invoice = doc["invoice"] | {"company_ref": doc["company_ref"]}
                                run.invoices[invoice["invoice_id"]] = invoice
            finally:
                await consumer.stop()

        self._reader = asyncio.create_task(read())

    async def settle(self, runs: list[Run], month: int, *, settled: bool) -> None:
        """Wait until everything the month's closing tick caused is done (rating's closes, the invoices) and read.

        The advances answered ``settled``: every consumer group caught up and every outbox relayed, so every
        invoice event is on the topic; what is left is to read it to its end. Otherwise (the platform did not
        settle in its time), `flush`."""
        if settled:
            await self.read_to_end()
            return
        await self.flush(runs, month)

    async def read_to_end(self, timeout_s: float = 120) -> None:
        """Until the reader has read the invoice and dead-letter topics to the ends they have now."""
        probe = AIOKafkaConsumer(bootstrap_servers=self.e.bootstrap, enable_auto_commit=False)
        await probe.start()
        try:
            ends = await probe.end_offsets(self._reader_partitions)
        finally:
            await probe.stop()
        deadline = time.monotonic() + timeout_s
        while any(self._reader_consumer.last_position(tp) < end for tp, end in ends.items() if end > 0):
            if time.monotonic() > deadline:
                raise DriveError("the invoice reader did not reach the topics' end")
            await asyncio.sleep(0.1)

    async def flush(self, runs: list[Run], month: int, *, quiet_s: float = 2.0, timeout_s: float = 600) -> None:
        """A second advance, one second later, which the platform applies only once every consumer group has
        caught up with everything before it (rating's closes, invoicing's drafts, taxes and conversions); then
        invoicing's list and the topic, until they agree and nothing changes for ``quiet_s``."""
        await asyncio.gather(
            *(self.advance(r, local_midnight(r.scenario.month_end(month), r.scenario.timezone) + SETTLE) for r in runs)
        )
        deadline = time.monotonic() + timeout_s
        last_change = time.monotonic()
        last: tuple[int, ...] = ()
        while time.monotonic() < deadline:
            state = []
            busy = False
            for run in runs:
                period_start = run.scenario.months[month].isoformat()
                rows = (
                    await self.call("invoicing", "GET", "/v1/invoices", auth=run.auth, params={"limit": 500})
                ).json()
                rows = rows["items"] if isinstance(rows, dict) else rows
                ours = [r for r in rows if str(r["period_start"]) == period_start]
                busy = busy or any(r["status"] in TRANSIENT for r in ours)
                issued = {str(r["invoice_id"]) for r in ours if r["status"] not in TRANSIENT | {"held", "cancelled"}}
                seen = {i for i, inv in run.invoices.items() if inv["period_start"] == period_start}
                busy = busy or not issued <= seen
                state.append(len(ours))
            snapshot = tuple(state)
            if snapshot != last or busy:
                last, last_change = snapshot, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return
            await asyncio.sleep(0.5)
        raise DriveError(f"invoices of month {month + 1} did not settle in {timeout_s:.0f} s")

    async def reconcile(self, run: Run) -> None:
        """Every record sent (not malformed, duplicates once) is one metering keeps: a note on the run when not."""
        sent: dict[str, set[tuple[str, str]]] = {"usage": set(), "time": set()}
        for r in run.scenario.records:
            if isinstance(r.value, dict):
                kind = "time" if "entry_id" in r.value else "usage"
                sent[kind].add((r.value["source"], r.value.get("entry_id") or r.value["event_id"]))
        start = local_midnight(run.scenario.months[0], run.scenario.timezone) - timedelta(days=40)
        end = local_midnight(run.scenario.end, run.scenario.timezone) + timedelta(days=2)
        span = {"start": start.isoformat(), "end": end.isoformat()}
        for kind, path, field_name in (("usage", "/v1/usage", "records"), ("time", "/v1/time-entries", "entries")):
            found = (await self.call("metering", "GET", path, auth=run.auth, params=span)).json()[field_name]
            if len(found) < len(sent[kind]):
                run.notes.append(
                    f"metering keeps {len(found)} of the {len(sent[kind])} {kind} records sent (GET {path})"
                )

    async def held(self, run: Run) -> list[dict[str, Any]]:
        rows = (await self.call("invoicing", "GET", "/v1/invoices", auth=run.auth, params={"limit": 500})).json()
        rows = rows["items"] if isinstance(rows, dict) else rows
        return [r for r in rows if r["status"] == "held"]

    async def midway(self, runs: list[Run], i: int) -> None:
        """The catalog changes of phase 2 (a service added midway): once metering holds the records for it
        unmapped; then until it has mapped them."""
        midway = [r for r in runs if any(c.month == i and c.phase == 2 for c in r.scenario.changes)]

        async def one(r: Run) -> None:
            expected = sum(x.note == "unmapped" and x.month == i for x in r.scenario.records)

            async def waiting() -> bool:
                return await self.unmapped(r) >= expected

            async def mapped() -> bool:
                return await self.unmapped(r) == 0

            try:
                await until(waiting, what=f"{expected} records of a service not in the catalog unmapped", timeout_s=120)
            except DriveError as exc:
                r.notes.append(f"month {i + 1}: {exc}; the service was added anyway")
            await self.catalog_changes(r, i, 2)
            try:
                await until(mapped, what="metering to map them once the service was added", timeout_s=120)
            except DriveError as exc:
                r.notes.append(f"month {i + 1}: {exc}")

        await asyncio.gather(*(one(r) for r in midway))

    # -- the whole thing -------------------------------------------------------------------------------------
    async def run(self, scenarios: list[Scenario], *, concurrency: int = 6) -> list[Run]:
        """Every scenario through all its months, in lockstep; returns the runs with their invoices."""
        runs = [Run(s) for s in scenarios]
        self._runs.update({r.tenant: r for r in runs})
        await self.start_reader()
        gate = asyncio.Semaphore(concurrency)

        async def each(step: Callable[[Run], Awaitable[None]]) -> None:
            async def one(run: Run) -> None:
                async with gate:
                    await step(run)

            await asyncio.gather(*(one(r) for r in runs))

        started = time.monotonic()
        await each(self.create_tenant)
        await each(self.import_catalog)
        await each(self.tax_and_currencies)
        await each(self.rules_in_place)
        await each(self.approve_pending)
        self.say(f"  set up {len(runs)} tenants in {time.monotonic() - started:.1f} s")
        months = len(scenarios[0].months)
        for i in range(months):
            t0 = time.monotonic()
            if i == 0:
                await asyncio.gather(
                    *(self.advance(r, local_midnight(r.scenario.months[0], r.scenario.timezone)) for r in runs)
                )
            await each(functools.partial(self.start_of_month, month=i))
            await each(self.approve_pending)
            n = await self.publish(runs, i, 1)
            await self.midway(runs, i)
            n += await self.publish(runs, i, 2)
            t1 = time.monotonic()
            answers = await asyncio.gather(
                *(
                    self.advance(r, local_midnight(r.scenario.month_end(i), r.scenario.timezone), settle=True)
                    for r in runs
                )
            )
            t2 = time.monotonic()
            await self.settle(runs, i, settled=all(answers))
            if i == months - 1:
                for r in runs:
                    await self.reconcile(r)
            self.say(
                f"  month {i + 1}/{months}: {n} records published in {t1 - t0:.1f} s, clocks advanced in "
                f"{t2 - t1:.1f} s, invoices settled in {time.monotonic() - t2:.1f} s"
            )
        return runs
