"""The wall-clock scheduler: every ``every_s`` seconds, a tick for every live tenant — from exactly one
catalog replica at a time.

Replicas compete for the lease ``catalog:wall-clock-scheduler`` (shared/db/lease.py). The holder ticks at
once when it takes over and then every ``every_s``; the others wait, and one of them takes over within about
a second of the holder's session ending (stopped, SIGKILLed, connection lost). No tick is lost across a
failover: a tick carries the wall time, and each consumer acts on everything due up to it, so the new
leader's first tick covers the gap. None is doubled in effect: ticks lock the tenant's clock row, and every
consumer treats a period already closed as done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import structlog
from prometheus_client import Counter

from shared.db.lease import leased

log = structlog.get_logger(__name__)
TICKS = Counter("wall_clock_ticks_total", "Wall-clock scheduler passes that ticked the live tenants")
LEASE = "catalog:wall-clock-scheduler"

Tick = Callable[[datetime], Awaitable[int]]
"""Tick every live tenant at the given wall time; returns how many were ticked."""


class WallClockScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        tick: Tick,
        *,
        every_s: float,
        now: Callable[[], datetime],
        lease: str = LEASE,
        poll_s: float = 1.0,
    ) -> None:
        self._pool, self._tick, self._every, self._now = pool, tick, every_s, now
        self._lease, self._poll = lease, poll_s
        self.leading = False

    async def run(self) -> None:
        while True:
            try:
                async with leased(self._pool, self._lease, poll_s=self._poll) as lease:
                    self.leading = True
                    log.info("wall_clock_scheduler_leading", lease=self._lease)
                    while True:
                        await lease.still_held()  # a lost session means another replica may lead now
                        await self._tick_once()
                        await asyncio.sleep(self._every)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("wall_clock_scheduler_lost_its_lease", lease=self._lease, exc_info=True)
                await asyncio.sleep(self._poll)
            finally:
                self.leading = False

    async def _tick_once(self) -> None:
        try:
            count = await self._tick(self._now())
        except Exception:  # one failed pass is retried on the next; the lease stays held
            log.exception("wall_clock_tick_failed")
            return
        TICKS.inc()
        log.debug("wall_clock_ticked", tenants=count)
