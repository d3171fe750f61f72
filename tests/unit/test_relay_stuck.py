"""Spec: a relay that keeps failing shows in readiness (issue 17: /health/ready stayed green while nothing was
published)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.messaging.relay import OutboxRelay


class _UnreachablePool:
    """A pool whose every connection attempt fails, as when the database refuses the relay."""

    def acquire(self) -> Any:
        raise OSError("connection refused")


async def test_a_relay_failing_longer_than_the_threshold_is_stuck_with_its_reason() -> None:
    relay = OutboxRelay(pool=_UnreachablePool(), producer=None, schema="metering")  # type: ignore[arg-type]
    assert relay.stuck(after_s=0.0) is None  # not failing yet
    relay.start()
    try:
        reason = None
        for _ in range(200):  # the first attempt fails at once; a loaded machine may take a while to get there
            await asyncio.sleep(0.05)
            if (reason := relay.stuck(after_s=0.05)) is not None:
                break
        assert reason is not None
        assert reason.startswith("the outbox relay has failed for")
        assert "OSError: connection refused" in reason
        assert relay.stuck(after_s=60) is None  # not for a minute yet
    finally:
        await relay.stop()
