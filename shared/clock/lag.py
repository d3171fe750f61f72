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

# Lag is used only as "zero or not". That matters on the local Tansu broker, whose reported end offset of a
# partition is the base offset of its last record batch plus one (not the last record's offset plus one):
# the magnitude is then too small, but an unconsumed batch still has base >= committed, so lag stays > 0
# until it is consumed, and a consumed partition has committed >= end. On Apache Kafka both are exact.


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
        for sub in self._subs:
            group = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=sub.group, enable_auto_commit=False)
            await group.start()
            try:
                lag = 0
                for p in range(sub.topic.partitions):
                    tp = TopicPartition(sub.topic.name, p)
                    committed = await group.committed(tp) or 0
                    lag += max(0, ends.get(tp, 0) - committed)
                by_group[sub.group] = by_group.get(sub.group, 0) + lag
            finally:
                await group.stop()
        return LagReport(total=sum(by_group.values()), by_group=by_group)

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
