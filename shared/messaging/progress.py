"""Whether this service's consumer groups make progress (issue 18, item 4; issue 24, part 2): a group that has
records to consume and has committed nothing for `CONSUMER_STUCK_AFTER_S` (120 s) turns /health/ready red, with
the group and topic in the reason, and is logged. That covers a consumer hung in its batch and a group that holds
no partition at all (the local broker can leave a group without an assignment after its members left together),
which a failing-batch streak (shared/messaging/streaks.py) cannot see: nothing fails, nothing happens.

Every replica watches its service's groups (cheap: one end-offset request and one offset fetch per group every
30 s, over long-lived clients); lag here is the broker's reported end minus the committed offset, which is all a
liveness signal needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.topology import Subscription

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GroupPosition:
    committed: int  # offsets committed, summed over the group's partitions
    lag: int  # records between them and the partitions' ends


class ProgressWatch:
    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        stuck_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topic = {s.group: s.topic.name for s in subscriptions}
        self._subs = tuple(subscriptions)
        self._after = stuck_after_s
        self._clock = clock
        self._since: dict[str, tuple[int, float | None]] = {}  # group -> (committed, since when unchanged with lag)
        self._stuck: dict[str, str] = {}

    def observe(self, positions: dict[str, GroupPosition]) -> None:
        """Take one reading of every group (pure but for the clock)."""
        now = self._clock()
        for group, at in positions.items():
            before = self._since.get(group)
            if at.lag == 0 or before is None or at.committed != before[0] or before[1] is None:
                self._since[group] = (at.committed, None if at.lag == 0 else now)  # the wait starts with lag
                self._stuck.pop(group, None)
                continue
            idle = now - before[1]
            if idle >= self._after:
                if group not in self._stuck:
                    log.error("consumer_group_stuck", group=group, topic=self._topic[group], lag=at.lag, idle_s=idle)
                self._stuck[group] = (
                    f"consumer group {group} ({self._topic[group]}) has committed nothing for {idle:.0f} s "
                    f"with {at.lag} record(s) to consume"
                )

    def stuck(self) -> str | None:
        return "; ".join(sorted(self._stuck.values())) or None

    async def read(self, ends_reader: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> dict[str, GroupPosition]:
        partitions = {s.group: [TopicPartition(s.topic.name, p) for p in range(s.topic.partitions)] for s in self._subs}
        ends = await ends_reader.end_offsets([tp for tps in partitions.values() for tp in tps])
        found: dict[str, GroupPosition] = {}
        for group, tps in partitions.items():
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            committed = {tp: max(0, o.offset) for tp, o in offsets.items() if o is not None}
            found[group] = GroupPosition(
                committed=sum(committed.values()),
                lag=sum(max(0, ends.get(tp, 0) - committed.get(tp, 0)) for tp in tps),
            )
        return found

    async def run(self, bootstrap: str, *, every_s: float = 30.0) -> None:
        """Read every ``every_s`` seconds over one long-lived consumer and admin client (opened again after an
        error), so the watch costs the broker little."""
        while True:
            ends_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            try:
                await ends_reader.start()
                await admin.start()
                while True:
                    self.observe(await self.read(ends_reader, admin))
                    await asyncio.sleep(every_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker away: readiness already says so
                log.warning("consumer_progress_unreadable", exc_info=True)
                await asyncio.sleep(every_s)
            finally:
                await ends_reader.stop()
                await admin.close()
