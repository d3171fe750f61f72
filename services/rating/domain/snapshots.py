"""Snapshot usage (a count seen at an instant, e.g. devices under management) to a period's quantity. Pure.

A snapshot is the count in force from its ``occurred_at`` until the next snapshot for the same client and
service (billing.usage.v1), so a period is priced with the snapshots inside it **and** the count carried in:
the latest snapshot before the covered span (the period, or the part of it an assignment covers when it starts
mid-period) counts as a snapshot at the span's start (``carried_in``, given by the caller; None when nothing was
ever counted before). A snapshot inside the period at the span's very start replaces it. A count of 0 is a count:
carried in alone it bills nothing.

The service's ``snapshot_aggregation`` decides:
- ``peak``: the largest count in force in the span (the carried-in count included);
- ``last``: the latest count (latest ``occurred_at``; the higher record id breaks a tie); the carried-in count
  when no snapshot arrived in the period;
- ``time_weighted_average``: each count holds from its instant until the next count (the last one until the
  period's end); the carried-in count holds from the span's start until the first snapshot of the period, so
  the average is over the whole span once anything is in force. With nothing carried in, the average is over
  the time from the first count to the period's end: the days before anything was counted neither add nor
  dilute. To 60 significant digits when it does not terminate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Context, Decimal
from uuid import UUID

from shared.contracts.catalog import SnapshotAggregation

_AVG = Context(prec=60)

Snapshot = tuple[datetime, UUID, Decimal]
"""when it was counted (for a carried-in count: the span's start), the record, the count"""


def in_force(snapshots: Sequence[Snapshot], carried_in: Snapshot | None) -> list[Snapshot]:
    """The counts in force over the span, in time order: the carried-in one first, unless a snapshot of the
    period replaces it at the span's very start."""
    ordered = sorted(snapshots, key=lambda s: (s[0], str(s[1])))
    if carried_in is not None and (not ordered or ordered[0][0] > carried_in[0]):
        ordered.insert(0, carried_in)
    return ordered


def aggregate(
    how: SnapshotAggregation,
    snapshots: Sequence[Snapshot],
    *,
    period_end: datetime,
    carried_in: Snapshot | None = None,
) -> Decimal:
    ordered = in_force(snapshots, carried_in)
    if not ordered:
        return Decimal(0)
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
