"""Snapshot usage (a count seen at an instant, e.g. devices under management) to a span's quantity. Pure.

A snapshot is the count in force from its ``occurred_at`` until the next snapshot for the same client and
service (billing.usage.v1), so a span is priced with the snapshots inside it **and** the count carried in: the
latest snapshot before the covered span ``[start, end)`` (the period, or the part of it an assignment covers),
from any time and any plan, counts as a snapshot at ``start`` (``carried_in``, given by the caller; None when
nothing was ever counted before). A snapshot at the span's very start replaces it. A count of 0 is a count:
carried in alone it bills nothing. (docs/billing-rules.md §3)

The service's ``snapshot_aggregation`` decides:
- ``peak``: the largest count in force in the span (the carried-in count included);
- ``last``: the latest count (latest ``occurred_at``; the higher record id breaks a tie); the carried-in count
  when no snapshot arrived in the span;
- ``time_weighted_average``: Σ count x seconds it is in force within the span / the span's seconds. Before the
  first count in force nothing is in force: zero. So a first VM counted on the 28th weighs 3 days of 30, not
  the whole month. Rounded half-up to 4 places (`quantities.round_quantity`, the quantity boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from services.rating.domain.quantities import round_quantity
from shared.contracts.catalog import SnapshotAggregation

Snapshot = tuple[datetime, UUID, Decimal]
"""when it was counted (for a carried-in count: the span's start), the record, the count"""


def in_force(snapshots: Sequence[Snapshot], carried_in: Snapshot | None) -> list[Snapshot]:
    """The counts in force over the span, in time order: the carried-in one first, unless a snapshot of the
    span replaces it at the span's very start."""
    ordered = sorted(snapshots, key=lambda s: (s[0], str(s[1])))
    if carried_in is not None and (not ordered or ordered[0][0] > carried_in[0]):
        ordered.insert(0, carried_in)
    return ordered


def aggregate(
    how: SnapshotAggregation,
    snapshots: Sequence[Snapshot],
    *,
    span_start: datetime,
    span_end: datetime,
    carried_in: Snapshot | None = None,
) -> Decimal:
    """The span's quantity of a snapshot line (see the module doc); ``snapshots`` lie in ``[span_start, span_end)``."""
    ordered = in_force(snapshots, carried_in)
    if not ordered:
        return Decimal(0)
    if how is SnapshotAggregation.PEAK:
        return max(q for _, _, q in ordered)
    if how is SnapshotAggregation.LAST:
        return ordered[-1][2]
    span = _seconds(span_start, span_end)
    if span <= 0:
        return ordered[-1][2]
    # each count holds from its instant (never before the span) until the next count, the last until the end
    starts = [max(at, span_start) for at, _, _ in ordered]
    ends = [*starts[1:], span_end]
    weighted = sum(
        (q * _seconds(a, min(b, span_end)) for (_, _, q), a, b in zip(ordered, starts, ends, strict=True) if b > a),
        Decimal(0),
    )
    return round_quantity(weighted / span)


def _seconds(a: datetime, b: datetime) -> Decimal:
    delta = b - a
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000
