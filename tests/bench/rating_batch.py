"""Rating's batch path alone, against a real (embedded) Postgres: wall and CPU time per batch.

`make bench` times rating on the whole stack (accepted record → charge on rating.charges.v1), where the figure
moves with whatever else the machine runs. This isolates the accepted-records consumer (the kernel's
`process_batch` with `handlers.ACCEPTED`: parse, inbox claim, `rate_records`, outbox) in one process with one
Postgres, and reports this process's CPU time per batch, the figure that says what a code change saved.
Records are usage deltas on a per-unit line (charged on arrival), spread over 20 clients of one tenant.
``BENCH_PROFILE=1`` prints a cProfile of it. Figures are printed, never asserted.

    PYTHONPATH=. python -m tests.bench.rating_batch
    BENCH_ROUNDS=20 BENCH_PROFILE=1 PYTHONPATH=. python -m tests.bench.rating_batch
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from services.rating import handlers
from shared.contracts.catalog import (
    AssignmentState,
    CatalogEvent,
    CompanyState,
    PlanLine,
    PlanState,
    ServiceState,
    TenantState,
)
from shared.messaging.consumer import process_batch
from shared.messaging.envelope import Envelope
from tests.bench.service_db import service_db

BATCH = int(os.environ.get("BENCH_BATCH", "500"))  # the consumers' batch_max_records
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "12"))
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
SQL = os.environ.get("BENCH_SQL") == "1"  # wall time per SQL statement (first line), summed over the run
CLIENTS = 20


def catalog_events(tenant: uuid.UUID) -> tuple[list[dict[str, Any]], uuid.UUID, list[tuple[uuid.UUID, str]]]:
    service_id, plan_id = uuid.uuid4(), uuid.uuid4()
    states: list[Any] = [
        TenantState(tenant_id=tenant, name="Bench", mode="sandbox", timezone="UTC", base_currency="USD"),
        ServiceState(
            tenant_id=tenant,
            service_id=service_id,
            code="flat-device",
            name="Device",
            service_type="Usage",
            default_rate=Decimal("2.50"),
            currency="USD",
            unit="device",
        ),
        PlanState(
            tenant_id=tenant,
            plan_id=plan_id,
            name="Flat",
            plan_type="usage-based",
            billing_frequency="monthly",
            currency="USD",
            lines=[PlanLine(service_id=service_id)],
        ),
    ]
    clients = []
    for i in range(CLIENTS):
        company = uuid.uuid4()
        clients.append((company, f"client-{i}"))
        states.append(
            CompanyState(
                tenant_id=tenant,
                company_id=company,
                company_ref=f"client-{i}",
                name=f"Client {i}",
                region="US",
                currency="USD",
                billing_anchor=date(2026, 1, 1),
            )
        )
        states.append(
            AssignmentState(
                tenant_id=tenant,
                assignment_id=uuid.uuid4(),
                company_id=company,
                plan_id=plan_id,
                start_date=date(2026, 1, 1),
            )
        )
    ids = {"tenant": "tenant_id", "service": "service_id", "plan": "plan_id", "company": "company_id"}
    events = [
        CatalogEvent(
            event_id=uuid.uuid4(),
            tenant_id=tenant,
            entity_type=s.entity_type,
            entity_id=getattr(s, ids.get(s.entity_type, "assignment_id")),
            version=1,
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            state=s,
        ).model_dump(mode="json")
        for s in states
    ]
    return events, service_id, clients


def accepted(
    tenant: uuid.UUID, service_id: uuid.UUID, clients: list[tuple[uuid.UUID, str]], prefix: str
) -> list[Envelope]:
    out = []
    for i in range(BATCH):
        company, ref = clients[i % len(clients)]
        doc = {
            "record_type": "usage",
            "record_id": str(uuid.uuid4()),
            "tenant_id": str(tenant),
            "source": "bench",
            "event_id": f"{prefix}-{i}",
            "company_id": str(company),
            "company_ref": ref,
            "service_id": str(service_id),
            "service_ref": "flat-device",
            "kind": "delta",
            "quantity": "1",
            "unit": "device",
            "occurred_at": "2026-01-15T10:00:00+00:00",
        }
        out.append(Envelope("metering.accepted.v1", 0, i, f"{tenant}:{ref}", json.dumps(doc).encode(), {}))
    return out


SQL_TIMES: dict[str, list[float]] = {}


def time_sql() -> None:
    """Wrap asyncpg's query methods to sum each statement's wall time (client side: round trip included)."""
    for name in ("execute", "executemany", "fetch", "fetchval", "fetchrow"):
        original = getattr(asyncpg.Connection, name)

        async def timed(self: Any, query: str, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await __original(self, query, *args, **kwargs)
            finally:
                label = " ".join(query.split())[:90]
                SQL_TIMES.setdefault(label, []).append(time.perf_counter() - started)

        setattr(asyncpg.Connection, name, timed)


def print_sql(batches: int) -> None:
    print(f"SQL wall per batch (ms), {batches} batches:")
    for label, took in sorted(SQL_TIMES.items(), key=lambda kv: -sum(kv[1]))[:15]:
        print(f"  {sum(took) * 1000 / batches:7.1f}  x{len(took) / batches:4.1f}  {label}")


async def run(pool: asyncpg.Pool, tenant: uuid.UUID, service_id: uuid.UUID, clients: list[Any]) -> None:
    profile = cProfile.Profile()
    walls, cpus = [], []
    for r in range(ROUNDS):
        envelopes = accepted(tenant, service_id, clients, f"r{r}-{uuid.uuid4().hex[:6]}")
        measured = PROFILE and r > 0
        wall, cpu = time.perf_counter(), time.process_time()
        if measured:
            profile.enable()
        applied = (await process_batch(pool, handlers.ACCEPTED, envelopes)).applied
        if measured:
            profile.disable()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert applied == BATCH, f"{applied} of {BATCH} applied"
    wall_ms, cpu_ms = statistics.median(walls[1:]) * 1000, statistics.median(cpus[1:]) * 1000  # the first warms up
    print(
        f"rating accepted  batches of {BATCH}: median wall {wall_ms:6.0f} ms, CPU {cpu_ms:6.0f} ms"
        f"  ->  {BATCH / cpu_ms * 1000:6.0f} records per CPU-second, {BATCH / wall_ms * 1000:6.0f} records/s wall"
    )
    if SQL:
        print_sql(ROUNDS)
    if PROFILE:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


async def main(home: Path) -> None:
    async with service_db(home, "rating") as db:
        tenant = uuid.uuid4()
        events, service_id, clients = catalog_events(tenant)
        seeded = [
            Envelope("catalog.events.v1", 0, i, f"{tenant}:x", json.dumps(e).encode(), {}) for i, e in enumerate(events)
        ]
        await process_batch(db.pool, handlers.CATALOG, seeded)
        await run(db.pool, tenant, service_id, clients)


if __name__ == "__main__":
    home = Path(tempfile.mkdtemp(prefix="msp-bench-rating-"))
    if SQL:
        time_sql()
    try:
        asyncio.run(main(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
