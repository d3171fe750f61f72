"""Snapshot usage (a count seen at an instant, e.g. devices under management) to a period's quantity. Pure.

The service's ``snapshot_aggregation`` decides:
- ``peak``: the largest count seen in the period;
- ``last``: the latest count (latest ``occurred_at``; the higher record id breaks a tie);
- ``time_weighted_average``: each count holds from its instant until the next count (the last one until
  the period's end); the average is over the time from the first count to the period's end, so the days
  before anything was counted neither add nor dilute (to 60 significant digits when it does not terminate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Context, Decimal
from uuid import UUID

from shared.contracts.catalog import SnapshotAggregation

_AVG = Context(prec=60)


def aggregate(
    how: SnapshotAggregation, snapshots: Sequence[tuple[datetime, UUID, Decimal]], *, period_end: datetime
) -> Decimal:
    if not snapshots:
        return Decimal(0)
    ordered = sorted(snapshots, key=lambda s: (s[0], str(s[1])))
    if how is SnapshotAggregation.PEAK:
        return max(q for _, _, q in ordered)
    if how is SnapshotAggregation.LAST:
        return ordered[-1][2]
    ends = [s[0] for s in ordered[1:]] + [period_end]
    span = Decimal(str((period_end - ordered[0][0]).total_seconds()))
    if span <= 0:
        return ordered[-1][2]
    weighted = sum(
        (q * Decimal(str((end - at).total_seconds())) for (at, _, q), end in zip(ordered, ends, strict=True)),
        Decimal(0),
    )
    return _AVG.divide(weighted, span)
