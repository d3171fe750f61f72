"""Metering's ingest path alone, against a real (embedded) Postgres: wall and CPU time per batch.

`make bench` times metering end to end on the whole stack, where the figures move with whatever else the
machine runs. This isolates the per-batch path (`ingest_http`, or the kernel's `process_batch` with the usage
consumer as for Kafka) in one process with one Postgres, and reports this process's CPU time per batch,
which is the figure that says what a code change saved. ``BENCH_PROFILE=1`` prints a cProfile of it.

    PYTHONPATH=. python -m tests.bench.metering_ingest            # http and kafka, 12 batches of 1,000
    BENCH_MODE=kafka BENCH_ROUNDS=20 BENCH_PROFILE=1 PYTHONPATH=. python -m tests.bench.metering_ingest
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.metering import handlers, use_cases
from shared.db.uow import unit_of_work
from shared.messaging.consumer import process_batch
from shared.messaging.envelope import Envelope
from tests.bench.service_db import service_db

BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "12"))
MODES = os.environ.get("BENCH_MODE", "http,kafka").split(",")
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
CLIENTS = 20


def usage_docs(tenant: uuid.UUID, prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "source": "bench",
            "tenant_id": str(tenant),
            "company_ref": f"client-{i % CLIENTS}",
            "service_ref": "managed-device",
            "quantity": "1",
            "unit": "device",
            "occurred_at": "2026-01-15T10:00:00+00:00",
        }
        for i in range(n)
    ]


async def seed(admin_dsn: str) -> uuid.UUID:
    """A known tenant with a service and clients on a plan, straight into metering's read model."""
    tenant = uuid.uuid4()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("SET search_path = metering")
        await conn.execute("INSERT INTO known_tenants VALUES ($1, 1)", tenant)
        await conn.execute(
            "INSERT INTO services VALUES ($1, $2, 'managed-device', 'device', 'Usage', 1)", tenant, uuid.uuid4()
        )
        for i in range(CLIENTS):
            company = uuid.uuid4()
            await conn.execute("INSERT INTO companies VALUES ($1, $2, $3, 1)", tenant, company, f"client-{i}")
            await conn.execute(
                "INSERT INTO assignments VALUES ($1, $2, $3, '2026-01-01', NULL, false, 1)",
                tenant,
                uuid.uuid4(),
                company,
            )
    finally:
        await conn.close()
    return tenant


async def run(pool: asyncpg.Pool, tenant: uuid.UUID, mode: str) -> None:
    profile = cProfile.Profile()
    walls, cpus = [], []
    for r in range(ROUNDS):
        docs = usage_docs(tenant, f"{mode}-{r}-{uuid.uuid4().hex[:6]}", BATCH)
        envelopes = [
            Envelope("billing.usage.v1", 0, i, f"{tenant}:{d['company_ref']}", json.dumps(d).encode(), {})
            for i, d in enumerate(docs)
        ]
        measured = PROFILE and r > 0
        wall, cpu = time.perf_counter(), time.process_time()
        if measured:
            profile.enable()
        if mode == "http":
            async with unit_of_work(pool, tenant_id=tenant) as uow:
                outcomes = await use_cases.ingest_http(uow, "usage", docs, actor="bench", now=datetime.now(UTC))
            accepted = sum(o.answer == "accepted" for o in outcomes)
        else:
            accepted = (await process_batch(pool, handlers.USAGE, envelopes)).applied
        if measured:
            profile.disable()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert accepted == BATCH, f"{accepted} of {BATCH} accepted"
    wall_ms, cpu_ms = statistics.median(walls[1:]) * 1000, statistics.median(cpus[1:]) * 1000  # the first warms up
    print(
        f"{mode:5}  batches of {BATCH}: median wall {wall_ms:6.0f} ms, CPU {cpu_ms:6.0f} ms"
        f"  ->  {BATCH / cpu_ms * 1000:6.0f} records per CPU-second, {BATCH / wall_ms * 1000:6.0f} records/s wall"
    )
    if PROFILE:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


async def main(home: Path) -> None:
    async with service_db(home, "metering") as db:
        tenant = await seed(db.admin_dsn)
        for mode in MODES:
            await run(db.pool, tenant, mode)


if __name__ == "__main__":
    home = Path(tempfile.mkdtemp(prefix="msp-bench-metering-"))
    try:
        asyncio.run(main(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
