"""The live close barrier: wait until everything published before now has gone through the platform — even
while new records keep arriving (issue 18: a live tenant's period used to close on the first wall tick past its
end, and records still on a topic, in metering or in rating became next month's late adjustments).

The test clock's `ConsumerLagProbe.wait_until_settled` waits for the platform to be quiet, which a busy live
platform may never be. The barrier instead follows a watermark down the cascade, a fixed number of hops:

1. read the end of every consumed partition (`true_ends`): every record published before this moment is below;
2. wait until every declared consumer group has committed past those ends: each such record was applied, and
   whatever it caused is committed in its service's outbox (effects and outbox rows commit together, offsets
   after);
3. read each service's outbox `allocated` seq, and wait until its `relayed_through` reaches it: each such row is
   now on its topic — so the next hop's step 1 sees it.

``hops`` rounds cover a record's way from an upstream topic to where periods are closed (usage → metering →
accepted → rating: two; three by default for margin). Records published after the barrier began are not waited
for; nothing is lost either way — a record that arrives after a close is rated into the open period.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from aiokafka import TopicPartition


class Lag(Protocol):
    async def true_ends(self) -> dict[TopicPartition, int]: ...

    async def behind(self, ends: dict[TopicPartition, int]) -> dict[str, int]: ...


class Outboxes(Protocol):
    async def marks(self) -> dict[str, tuple[int, int] | None]: ...


class BarrierNotPassed(TimeoutError):
    """The barrier did not pass in time; ``behind`` says what was still in flight."""

    def __init__(self, timeout_s: float, behind: dict[str, object]) -> None:
        super().__init__(f"the close barrier did not pass within {timeout_s:.0f} s; still in flight: {behind}")
        self.behind = behind


class CloseBarrier:
    def __init__(self, lag: Lag, outboxes: Outboxes, *, hops: int = 3, poll_s: float = 0.2) -> None:
        self._lag, self._outboxes, self._hops, self._poll = lag, outboxes, hops, poll_s

    async def wait(self, *, timeout_s: float) -> float:
        """Seconds waited until everything published before the call went through ``hops`` hops; raises
        `BarrierNotPassed` after ``timeout_s``."""
        started = time.monotonic()
        for _ in range(self._hops):
            ends = await self._lag.true_ends()
            while behind := await self._lag.behind(ends):
                self._give_up_after(started, timeout_s, {"consumer_groups": behind})
                await asyncio.sleep(self._poll)
            targets = await self._allocated(started, timeout_s)
            while unrelayed := await self._unrelayed(targets):
                self._give_up_after(started, timeout_s, {"outboxes": unrelayed})
                await asyncio.sleep(self._poll)
        return time.monotonic() - started

    async def _allocated(self, started: float, timeout_s: float) -> dict[str, int]:
        """Every service's allocated seq now (a service that does not answer is asked again: a later mark only
        waits for more)."""
        while True:
            marks = await self._outboxes.marks()
            if all(m is not None for m in marks.values()):
                return {name: m[0] for name, m in marks.items() if m is not None}
            self._give_up_after(started, timeout_s, {"outboxes": {n: None for n, m in marks.items() if m is None}})
            await asyncio.sleep(self._poll)

    async def _unrelayed(self, targets: dict[str, int]) -> dict[str, int | None]:
        """Per service, how many seqs up to its target are not relayed yet (None: it did not answer)."""
        now = await self._outboxes.marks()
        left: dict[str, int | None] = {}
        for name, target in targets.items():
            current = now.get(name)
            if current is None:
                left[name] = None
            elif current[1] < target:
                left[name] = target - current[1]
        return left

    @staticmethod
    def _give_up_after(started: float, timeout_s: float, behind: dict[str, object]) -> None:
        if time.monotonic() - started > timeout_s:
            raise BarrierNotPassed(timeout_s, behind)
