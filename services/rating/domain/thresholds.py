"""Threshold crossings: which levels (percent of a limit) a running total passed. Pure.

A level is crossed when the total goes from below ``limit x level / 100`` to at or above it; each level is
published once per subject and period (the caller keeps which were published).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

DEFAULT_LEVELS = (Decimal(80), Decimal(100))


def crossed(levels: Iterable[Decimal], *, limit: Decimal, before: Decimal, after: Decimal) -> list[Decimal]:
    if limit <= 0:
        return []
    return sorted(level for level in set(levels) if before < limit * level / 100 <= after)
