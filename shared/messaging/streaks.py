"""How long something has kept failing: the outbox relay, and each consumed partition of each subscription.

Readiness reports a streak longer than its threshold as not ready, with the reason (issue 17: a relay that
published nothing, or a partition whose batch was redelivered forever, left /health/ready green). Wall-clock
monotonic time: this is operations, not billing.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


class FailureStreaks:
    """Runs of consecutive failures, one per key (a partition, or the single key ``None``)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._since: dict[Hashable, float] = {}
        self._last: dict[Hashable, str] = {}
        self._count: dict[Hashable, int] = {}

    def failed(self, exc: BaseException, key: Hashable = None) -> float:
        """Count a failure; returns how long to wait before the next attempt: 0.1 s, doubling to 5 s, so a
        database restarting is not hammered with the same batch (issue 24: 31 redeliveries in 14 s)."""
        self._since.setdefault(key, time.monotonic())
        self._last[key] = f"{type(exc).__name__}: {exc}"[:300]
        self._count[key] = self._count.get(key, 0) + 1
        return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._count[key] - 1)))

    def passed(self, key: Hashable = None) -> None:
        self._since.pop(key, None)
        self._last.pop(key, None)
        self._count.pop(key, None)

    def stuck(self, *, after_s: float = 30.0) -> str | None:
        """Why this counts as stuck (some key failing for more than ``after_s`` seconds in a row), or None."""
        now = time.monotonic()
        longest = max(self._since.items(), key=lambda kv: now - kv[1], default=None)
        if longest is None or now - longest[1] < after_s:
            return None
        key, since = longest
        where = "" if key is None else f" ({key})"
        return f"{self._what}{where} has failed for {now - since:.0f} s: {self._last[key]}"
