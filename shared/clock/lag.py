"""Consumer lag across the platform's consumer groups, read from the broker.

The test clock advances only when every declared group has consumed everything published before the
advance: total lag zero on several consecutive probes spanning more than an outbox relay's wake-up, so a
record still on its way from one service's outbox to the next topic is waited for too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.topology import SUBSCRIPTIONS, Subscription

# Lag is used only as "zero or not". On the local Tansu broker the reported end offset of a partition is the
# base offset of its last record batch plus one, not the last record's offset plus one. A consumer that has
# taken only part of that last batch (its fetch stopped at max_records, mid-batch) can therefore have
# committed past the reported end while records remain. So wherever a group's committed offset is at or past
# the reported end, the probe reads the partition from there: any record it finds moves the end past it.
# On Apache Kafka end offsets are exact and that read finds nothing.


class LagNotSettled(TimeoutError):
    """Consumers did not catch up within the allowed time; the advance was not applied."""


@dataclass(frozen=True, slots=True)
class LagReport:
    total: int
    by_group: dict[str, int]


class ConsumerLagProbe:
    def __init__(self, bootstrap_servers: str, subscriptions: Iterable[Subscription] = SUBSCRIPTIONS) -> None:
        self._bootstrap = bootstrap_servers
        self._subs = tuple(subscriptions)

    async def measure(self) -> LagReport:
        by_group: dict[str, int] = {}
        ends_consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await ends_consumer.start()
        try:
            all_tps = {TopicPartition(s.topic.name, p) for s in self._subs for p in range(s.topic.partitions)}
            ends = await ends_consumer.end_offsets(list(all_tps))
        finally:
            await ends_consumer.stop()
        committed: dict[tuple[str, TopicPartition], int] = {}
        for sub in self._subs:
            group = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=sub.group, enable_auto_commit=False)
            await group.start()
            try:
                for p in range(sub.topic.partitions):
                    tp = TopicPartition(sub.topic.name, p)
                    committed[sub.group, tp] = await group.committed(tp) or 0
            finally:
                await group.stop()
        at_or_past: dict[TopicPartition, int] = {}
        for (_, tp), offset in committed.items():
            if ends.get(tp, 0) > 0 and offset >= ends[tp]:
                at_or_past[tp] = min(offset, at_or_past.get(tp, offset))
        ends = ends | await self._records_beyond(at_or_past)
        for (group_id, tp), offset in committed.items():
            by_group[group_id] = by_group.get(group_id, 0) + max(0, ends.get(tp, 0) - offset)
        return LagReport(total=sum(by_group.values()), by_group=by_group)

    async def _records_beyond(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """For each partition, one past the last record found at or after its start offset (see the note at the
        top); partitions with nothing there are left out."""
        if not starts:
            return {}
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10, max_poll_records=10_000
        )
        await reader.start()
        try:
            reader.assign(list(starts))
            for tp, offset in starts.items():
                reader.seek(tp, offset)
            found: dict[TopicPartition, int] = {}
            batch = await reader.getmany(timeout_ms=200)
            for tp, records in batch.items():
                beyond = [r.offset for r in records if r.offset >= starts[tp]]
                if beyond:
                    found[tp] = max(beyond) + 1
            return found
        finally:
            await reader.stop()

    async def wait_until_settled(
        self, *, timeout_s: float = 60.0, quiet_probes: int = 3, interval_s: float = 0.15
    ) -> float:
        """Return the seconds waited once lag has been zero for ``quiet_probes`` probes in a row."""
        started = time.monotonic()
        quiet = 0
        last = LagReport(0, {})
        while quiet < quiet_probes:
            if time.monotonic() - started > timeout_s:
                behind = {g: n for g, n in last.by_group.items() if n}
                raise LagNotSettled(f"consumers still behind after {timeout_s:.0f}s: {behind}")
            last = await self.measure()
            quiet = quiet + 1 if last.total == 0 else 0
            await asyncio.sleep(interval_s)
        return time.monotonic() - started
