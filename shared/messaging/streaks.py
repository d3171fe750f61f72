"""How long something has kept failing: the outbox relay, and each consumed partition of each subscription.

Readiness reports a streak longer than its threshold as not ready, with the reason (issue 17: a relay that
published nothing, or a partition whose batch was redelivered forever, left /health/ready green). Wall-clock
monotonic time: this is operations, not billing.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class FailureStreaks:
    """Runs of consecutive failures, one per key (a partition, or the single key ``None``)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._since: dict[Hashable, float] = {}
        self._last: dict[Hashable, str] = {}

    def failed(self, exc: BaseException, key: Hashable = None) -> None:
        self._since.setdefault(key, time.monotonic())
        self._last[key] = f"{type(exc).__name__}: {exc}"[:300]

    def passed(self, key: Hashable = None) -> None:
        self._since.pop(key, None)
        self._last.pop(key, None)

    def stuck(self, *, after_s: float = 30.0) -> str | None:
        """Why this counts as stuck (some key failing for more than ``after_s`` seconds in a row), or None."""
        now = time.monotonic()
        longest = max(self._since.items(), key=lambda kv: now - kv[1], default=None)
        if longest is None or now - longest[1] < after_s:
            return None
        key, since = longest
        where = "" if key is None else f" ({key})"
        return f"{self._what}{where} has failed for {now - since:.0f} s: {self._last[key]}"
