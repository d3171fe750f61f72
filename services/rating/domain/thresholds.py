"""Threshold crossings: which levels (percent of a limit) a running total passed. Pure.

The levels are the tenant's, per plan line or bucket (``threshold_levels`` in the catalog), 80 % and 100 %
when not set. A level is crossed when the total goes from below ``limit x level / 100`` to at or above it; each level is
published once per subject and period (the caller keeps which were published).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

DEFAULT_LEVELS = (Decimal(80), Decimal(100))


def levels(configured: Iterable[Decimal] | None) -> tuple[Decimal, ...]:
    """The levels a plan line or bucket announces: its own ``threshold_levels``, else 80 % and 100 %."""
    return DEFAULT_LEVELS if configured is None else tuple(sorted(set(configured)))


def crossed(levels: Iterable[Decimal], *, limit: Decimal, before: Decimal, after: Decimal) -> list[Decimal]:
    if limit <= 0:
        return []
    return sorted(level for level in set(levels) if before < limit * level / 100 <= after)
