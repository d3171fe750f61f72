"""Buckets of hours: a period's allocation used in time order, overage once exhausted, rollover. Pure.

**Order of use.** Entries are taken in time order (start, then record id). Hours carried over are used
before the period's own allocation, oldest first (they expire first); the allocation is used last.
Once nothing is left, the rest of the entry and every later one is overage, charged at
``overage_rate`` per hour.

**Rollover** of what is left at the end of the period (``remaining``):
- ``none``: it lapses;
- ``carry_up_to``: at most ``max_hours`` are carried into the next period (older carried hours included);
  they stay usable until used or capped away at a later period end;
- ``expire_after``: every unused hour is carried, each lot usable for ``periods`` further periods after the
  period that granted it, then it lapses (``max_hours``, when given, also caps what is carried).

**Allocation.** ``hours`` each bucket period; a bucket period the assignment covers only in part (it starts or
ends inside it) gets ``hours x covered days / period days`` at the quantity boundary (`allocation_for`), unless
the bucket says ``prorate_partial_periods: false`` (docs/billing-rules.md §5).

**Invariant:** ``used + remaining == allocation + rolled_in`` and ``overage >= 0``.

**Hours available** in a period (what its threshold levels are fractions of): ``allocation + rolled_in``. Before
the periods ahead of it are settled (at the close of the billing period containing their end), what they carry in
is their provisional settlement with the entries rated so far (``carried_through``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from services.rating.domain.quantities import prorated_quantity
from shared.contracts.catalog import AssignmentState, BucketDefinition, RolloverPolicy
from shared.periods import Period

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Lot:
    """Carried hours: ``hours`` usable for ``periods_left`` more periods (None: no expiry)."""

    hours: Decimal
    periods_left: int | None = None


@dataclass(frozen=True, slots=True)
class Use:
    """How one entry was met: ``from_bucket`` hours out of what was available, ``overage`` beyond it."""

    record_id: UUID
    hours: Decimal
    from_bucket: Decimal
    overage: Decimal


@dataclass(frozen=True, slots=True)
class Settlement:
    allocation: Decimal
    rolled_in: Decimal
    used: Decimal  # hours met by the bucket (carried + allocation)
    overage: Decimal  # hours beyond it
    remaining: Decimal  # unused at period end, before rollover
    rolled_out: tuple[Lot, ...]  # carried into the next period
    expired: Decimal  # of remaining, what lapses
    uses: tuple[Use, ...] = field(default_factory=tuple)

    @property
    def rolled_out_hours(self) -> Decimal:
        return sum((lot.hours for lot in self.rolled_out), ZERO)


def allocation_for(definition: BucketDefinition, bucket_period: Period, assignment: AssignmentState) -> Decimal:
    """The hours of ``bucket_period`` under ``assignment``: prorated by the days it covers (see the module doc)."""
    end = bucket_period.end if assignment.end_date is None else min(bucket_period.end, assignment.end_date)
    covered = max(0, (end - max(bucket_period.start, assignment.start_date)).days)
    if not definition.prorate_partial_periods:
        return definition.hours
    return prorated_quantity(definition.hours, days=covered, of_days=bucket_period.days)


def settle(
    definition: BucketDefinition,
    carried: Sequence[Lot],
    entries: Sequence[tuple[UUID, Decimal]],
    *,
    allocation: Decimal | None = None,
) -> Settlement:
    """Settle one bucket period: ``entries`` are (record id, hours) already in time order; ``allocation`` its
    hours (`allocation_for`; the definition's hours when not given)."""
    hours_left = [lot.hours for lot in carried]
    own = definition.hours if allocation is None else allocation
    granted = own
    uses: list[Use] = []
    for record_id, hours in entries:
        need = hours
        for i, available in enumerate(hours_left):
            take = min(need, available)
            hours_left[i] -= take
            need -= take
        take = min(need, own)
        own -= take
        need -= take
        uses.append(Use(record_id, hours, hours - need, need))
    rolled_in = sum((lot.hours for lot in carried), ZERO)
    overage = sum((u.overage for u in uses), ZERO)
    used = sum((u.from_bucket for u in uses), ZERO)
    left_lots = [Lot(h, lot.periods_left) for h, lot in zip(hours_left, carried, strict=True) if h > 0]
    remaining = sum((lot.hours for lot in left_lots), ZERO) + own
    rolled_out = _roll(definition, left_lots, own)
    expired = remaining - sum((lot.hours for lot in rolled_out), ZERO)
    return Settlement(granted, rolled_in, used, overage, remaining, tuple(rolled_out), expired, tuple(uses))


def available(definition: BucketDefinition, carried: Sequence[Lot], *, allocation: Decimal | None = None) -> Decimal:
    """The hours a period has: its allocation plus what is carried into it."""
    own = definition.hours if allocation is None else allocation
    return own + sum((lot.hours for lot in carried), ZERO)


def carried_through(
    definition: BucketDefinition,
    carried: Sequence[Lot],
    periods: Sequence[Sequence[tuple[UUID, Decimal]]],
    *,
    allocations: Sequence[Decimal] | None = None,
) -> list[Lot]:
    """What is carried out of consecutive periods settled in order (``periods``: each one's entries in time order,
    ``allocations``: each one's hours), starting with ``carried`` into the first; with no periods, ``carried``."""
    lots = list(carried)
    for i, entries in enumerate(periods):
        allocation = None if allocations is None else allocations[i]
        lots = list(settle(definition, lots, entries, allocation=allocation).rolled_out)
    return lots


def _roll(definition: BucketDefinition, left: list[Lot], own: Decimal) -> list[Lot]:
    rule = definition.rollover
    if rule.policy is RolloverPolicy.NONE:
        return []
    if rule.policy is RolloverPolicy.CARRY_UP_TO:
        cap = rule.max_hours if rule.max_hours is not None else ZERO
        carry = min(cap, sum((lot.hours for lot in left), ZERO) + own)
        return [Lot(carry)] if carry > 0 else []
    # expire_after: each lot ages one period; the period's own unused hours start a new lot
    periods = rule.periods or 0
    aged = [Lot(lot.hours, (lot.periods_left or 0) - 1) for lot in left]
    out = [lot for lot in aged if (lot.periods_left or 0) > 0]
    if own > 0 and periods > 0:
        out.append(Lot(own, periods))
    if rule.max_hours is not None:
        out = _cap_newest_last(out, rule.max_hours)
    return out


def _cap_newest_last(lots: list[Lot], cap: Decimal) -> list[Lot]:
    """Keep at most ``cap`` hours, keeping the newest lots (they last longest)."""
    kept: list[Lot] = []
    room = cap
    for lot in reversed(lots):
        take = min(room, lot.hours)
        if take > 0:
            kept.append(Lot(take, lot.periods_left))
        room -= take
    return list(reversed(kept))
