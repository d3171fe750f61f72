"""Whether the platform has settled: every declared consumer group has consumed everything, and every
service's outbox has relayed everything it committed.

The test clock waits for it before it publishes a tick and, when asked, until the tick's work is done. A
probe (`ConsumerLagProbe.measure`) reads, in this order: each service's count of committed, unrelayed outbox
rows (`OutboxBacklog`), then the end offsets of every consumed topic, then every group's committed offsets.
The platform has settled when **two probes in a row are quiet (no lag, no unrelayed row) and saw the same
end offsets**. Why that is enough, without a timing margin:

- Every consumer commits its effect (and the outbox rows it causes) in one transaction, and its offset only
  after that transaction. So once the first probe reads lag zero against ends E, every record up to E was
  consumed and every row it caused is committed in some outbox.
- The second probe then reads every outbox empty: each such row was relayed, so it is on its topic before the
  second probe reads the ends. Those ends are still E, so the row was already within E and consumed, and so
  on down the cascade. Nothing is in flight.

Records that nothing on the platform consumes (``billing.invoices.v1``, ``notification.deliveries.v1``, dead
letters) need not be read by anyone, so only topics with a declared subscriber count. Work that starts from
something other than a record (the wall-clock scheduler, notification's delivery worker) is outside the
guarantee: what it commits to an outbox is waited for once committed, not before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.topology import SUBSCRIPTIONS, Subscription

# Lag is used only as "zero or not". On the local Tansu broker the reported end offset of a partition is the
# base offset of its last record batch plus one, not the last record's offset plus one. A consumer that has
# taken only part of that last batch (its fetch stopped at max_records, mid-batch) can therefore have
# committed past the reported end while records remain. So wherever a group's committed offset is at or past
# the reported end, the probe reads the partition from there: any record it finds moves the end past it.
# On Apache Kafka end offsets are exact and that read finds nothing.


class OutboxBacklog(Protocol):
    """The port to every service's outbox: how many committed rows each has not relayed yet."""

    async def pending(self) -> dict[str, int | None]:
        """Unrelayed rows per service; None for a service whose count could not be read."""
        ...


@dataclass(frozen=True, slots=True)
class LagReport:
    total: int
    by_group: dict[str, int]
    outboxes: dict[str, int | None] = field(default_factory=dict)
    ends: tuple[tuple[str, int, int], ...] = ()
    """The end offset of every consumed partition, as (topic, partition, end): two quiet probes must agree."""

    @property
    def quiet(self) -> bool:
        """Nothing to consume and nothing waiting in an outbox (an unreadable outbox is not quiet)."""
        return self.total == 0 and all(n == 0 for n in self.outboxes.values())

    def behind(self) -> dict[str, Any]:
        """What is not settled: groups with lag, and outboxes with unrelayed rows (null: could not be read)."""
        return {
            "consumer_groups": {g: n for g, n in self.by_group.items() if n},
            "outboxes": {s: n for s, n in self.outboxes.items() if n != 0},
        }


READ_BEYOND_TIMEOUT_S = 10.0


class LagNotSettled(TimeoutError):
    """The platform did not settle within the allowed time; ``report`` is the last probe."""

    def __init__(self, timeout_s: float, report: LagReport) -> None:
        behind = report.behind()
        super().__init__(
            f"not settled after {timeout_s:.0f}s: consumer groups still behind {behind['consumer_groups']}, "
            f"outbox rows not yet relayed {behind['outboxes']}"
        )
        self.report = report


class ConsumerLagProbe:
    def __init__(
        self,
        bootstrap_servers: str,
        subscriptions: Iterable[Subscription] = SUBSCRIPTIONS,
        *,
        outboxes: OutboxBacklog | None = None,
    ) -> None:
        """Without ``outboxes`` the probe sees only the broker, so a row committed and not yet relayed is
        invisible to it: only a probe of one topic (tests) goes without."""
        self._bootstrap = bootstrap_servers
        self._subs = tuple(subscriptions)
        self._outboxes = outboxes

    async def measure(self) -> LagReport:
        # The order matters (see the module docstring): outboxes first, then end offsets, then committed.
        outboxes = await self._outboxes.pending() if self._outboxes is not None else {}
        by_group: dict[str, int] = {}
        ends_consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await ends_consumer.start()
        try:
            all_tps = {TopicPartition(s.topic.name, p) for s in self._subs for p in range(s.topic.partitions)}
            ends = await ends_consumer.end_offsets(list(all_tps))
        finally:
            await ends_consumer.stop()
        committed = await self._committed()
        at_or_past: dict[TopicPartition, int] = {}
        for (_, tp), offset in committed.items():
            if ends.get(tp, 0) > 0 and offset >= ends[tp]:
                at_or_past[tp] = min(offset, at_or_past.get(tp, offset))
        ends = ends | await self._records_beyond(at_or_past)
        for (group_id, tp), offset in committed.items():
            by_group[group_id] = by_group.get(group_id, 0) + max(0, ends.get(tp, 0) - offset)
        return LagReport(
            total=sum(by_group.values()),
            by_group=by_group,
            outboxes=outboxes,
            ends=tuple(sorted((tp.topic, tp.partition, end) for tp, end in ends.items())),
        )

    async def true_ends(self) -> dict[TopicPartition, int]:
        """One past the last record of every consumed partition now (the broker's end offsets, corrected for
        the local broker's batch quirk noted at the top by reading from each)."""
        reader = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await reader.start()
        try:
            all_tps = {TopicPartition(s.topic.name, p) for s in self._subs for p in range(s.topic.partitions)}
            ends: dict[TopicPartition, int] = await reader.end_offsets(list(all_tps))
        finally:
            await reader.stop()
        return ends | await self._records_beyond({tp: end for tp, end in ends.items() if end > 0})

    async def behind(self, ends: dict[TopicPartition, int]) -> dict[str, int]:
        """Per group, the records of ``ends`` it has not committed yet (only groups still behind)."""
        found: dict[str, int] = {}
        for (group, tp), offset in (await self._committed()).items():
            missing = max(0, ends.get(tp, 0) - offset)
            if missing:
                found[group] = found.get(group, 0) + missing
        return found

    async def _committed(self) -> dict[tuple[str, TopicPartition], int]:
        """Every declared group's committed offset on each partition it consumes (0 where it has none), asked
        of the groups' coordinators concurrently: one admin client, one offset fetch per group."""
        wanted: dict[str, list[TopicPartition]] = {}
        for sub in self._subs:
            partitions = (TopicPartition(sub.topic.name, n) for n in range(sub.topic.partitions))
            wanted.setdefault(sub.group, []).extend(partitions)
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            answers = await asyncio.gather(
                *(admin.list_consumer_group_offsets(group, partitions=tps) for group, tps in wanted.items())
            )
        finally:
            await admin.close()
        committed: dict[tuple[str, TopicPartition], int] = {}
        for (group, tps), offsets in zip(wanted.items(), answers, strict=True):
            for tp in tps:
                found = offsets.get(tp)
                committed[group, tp] = found.offset if found is not None and found.offset > 0 else 0
        return committed

    async def _records_beyond(self, starts: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """For each partition, one past the last record found at or after its start offset (see the note at the
        top); partitions with nothing there are left out.

        A partition counts as read once the broker has answered a fetch for it (its high watermark is known):
        a single timed read could end before a loaded broker answered and take "no answer yet" for "nothing
        there". One still unanswered after `READ_BEYOND_TIMEOUT_S` counts as having a record (not settled)."""
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
            unread = set(starts)
            deadline = time.monotonic() + READ_BEYOND_TIMEOUT_S
            while unread:
                # A fetch answered before this getmany buffered its records, so this getmany returns them.
                answered = {tp for tp in unread if reader.highwater(tp) is not None}
                batch = await reader.getmany(*unread, timeout_ms=50)
                for tp, records in batch.items():
                    beyond = [r.offset for r in records if r.offset >= starts[tp]]
                    if beyond:
                        found[tp] = max(found.get(tp, 0), max(beyond) + 1)
                unread -= answered | set(found)
                if unread and time.monotonic() > deadline:
                    return found | {tp: starts[tp] + 1 for tp in unread}
            return found
        finally:
            await reader.stop()

    async def wait_until_settled(
        self, *, timeout_s: float = 60.0, quiet_probes: int = 2, interval_s: float = 0.05
    ) -> float:
        """Return the seconds waited once ``quiet_probes`` probes in a row were quiet and saw the same end
        offsets (two suffice; see the module docstring). Raise `LagNotSettled` after ``timeout_s``."""
        started = time.monotonic()
        streak: list[LagReport] = []
        while True:
            last = await self.measure()
            if not last.quiet:
                streak = []
            elif streak and last.ends == streak[-1].ends:
                streak.append(last)
            else:  # quiet, but records arrived since the last probe: they may still be causing work
                streak = [last]
            if len(streak) >= quiet_probes:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise LagNotSettled(timeout_s, last)
            await asyncio.sleep(interval_s)

    async def settled_now(self) -> LagReport | None:
        """None when the platform has settled (two quiet probes that agree), else the probe that was not."""
        first = await self.measure()
        if not first.quiet:
            return first
        second = await self.measure()
        return None if second.quiet and second.ends == first.ends else second
