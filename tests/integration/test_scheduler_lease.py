"""Catalog on several replicas (issue 18, item 2): exactly one wall-clock scheduler ticks at a time, and another
takes over within seconds when the leader dies — against the real database, each "replica" with its own pool.

The schedulers here compete for a lease of their own name, so the running catalog's scheduler is not part of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest

from services.catalog.adapters.scheduler import WallClockScheduler
from shared.db.pool import create_pool
from shared.services import service
from tests.support.platform import Platform

EVERY_S = 0.2
Ticks = list[tuple[float, str]]


@dataclass
class Replica:
    name: str
    pool: asyncpg.Pool
    ticks: list[tuple[float, str]]
    scheduler: WallClockScheduler = field(init=False)
    task: asyncio.Task[None] | None = None

    def start(self, lease: str) -> None:
        async def tick(_: datetime) -> int:
            self.ticks.append((time.monotonic(), self.name))
            return 0

        self.scheduler = WallClockScheduler(
            self.pool, tick, every_s=EVERY_S, now=lambda: datetime.now(UTC), lease=lease, poll_s=0.1
        )
        self.task = asyncio.create_task(self.scheduler.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


Replicas = tuple[Replica, Replica, Ticks]


@pytest.fixture
async def replicas(platform: Platform) -> AsyncIterator[Replicas]:
    ticks: list[tuple[float, str]] = []
    dsn = platform.stack.dsn(service("catalog"))
    a = Replica("a", await create_pool(dsn, min_size=1, max_size=3), ticks)
    b = Replica("b", await create_pool(dsn, min_size=1, max_size=3), ticks)
    yield a, b, ticks
    for r in (a, b):
        await r.stop()
        await r.pool.close()


async def until(condition: object, timeout_s: float = 10.0) -> float:
    """Seconds until ``condition()`` holds (fails after ``timeout_s``)."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < timeout_s, "not within the time allowed"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def lease_holder(admin: asyncpg.Connection, lease: str) -> int:
    """The backend holding the lease's advisory lock (its key is hashtext(name), a bigint: low 32 bits in objid)."""
    pid: int | None = await admin.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objid = (hashtext($1)::bigint & 4294967295)::oid",
        lease,
    )
    assert pid is not None, "somebody holds the lease"
    return pid


async def a_leads_b_waits(a: Replica, b: Replica) -> str:
    """Both replicas on a fresh lease, ``a`` leading first; returns the lease's name."""
    lease = f"test-scheduler-{uuid.uuid4()}"
    a.start(lease)
    await until(lambda: a.scheduler.leading)
    b.start(lease)
    return lease


def leaders_in_turn(ticks: list[tuple[float, str]]) -> list[str]:
    """Who ticked, one entry per run of consecutive ticks by the same replica."""
    runs: list[str] = []
    for _, who in ticks:
        if not runs or runs[-1] != who:
            runs.append(who)
    return runs


class TestOneSchedulerTicksAtATime:
    async def test_the_second_replica_waits_while_the_first_leads(self, replicas: Replicas) -> None:
        a, b, ticks = replicas
        await a_leads_b_waits(a, b)
        await asyncio.sleep(1.5)
        assert {who for _, who in ticks} == {"a"}
        assert len(ticks) >= 5  # every 0.2 s
        assert not b.scheduler.leading

    async def test_a_leader_that_dies_is_replaced_within_seconds_and_no_tick_overlaps(
        self, replicas: Replicas, admin: asyncpg.Connection
    ) -> None:
        a, b, ticks = replicas
        lease = await a_leads_b_waits(a, b)
        await asyncio.sleep(0.5)

        # a's process dies, as with SIGKILL: its session ends without unlocking, and it runs no more
        await admin.execute("SELECT pg_terminate_backend($1)", await lease_holder(admin, lease))
        await a.stop()
        died_at = time.monotonic()
        taken_over = await until(lambda: any(who == "b" for _, who in ticks))
        assert taken_over < 3.0
        first_b = next(at for at, who in ticks if who == "b")
        assert first_b - died_at < 3.0
        assert leaders_in_turn(ticks) == ["a", "b"]  # never both: a stopped before b began

    async def test_a_leader_that_loses_its_session_stops_ticking_and_the_other_takes_over(
        self, replicas: Replicas, admin: asyncpg.Connection
    ) -> None:
        a, b, ticks = replicas
        lease = await a_leads_b_waits(a, b)
        await asyncio.sleep(0.5)
        await admin.execute(
            "SELECT pg_terminate_backend($1)", await lease_holder(admin, lease)
        )  # a's session is cut; a itself lives on
        await until(lambda: b.scheduler.leading)
        cut_over = len(ticks)
        await asyncio.sleep(1.5)
        later = ticks[cut_over:]
        assert later, "the new leader ticks"
        assert {who for _, who in later} == {"b"}  # a does not tick on a lease it lost
        assert leaders_in_turn(ticks) == ["a", "b"]
