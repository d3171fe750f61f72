"""What rating charges when a period closes: period-priced usage, fixed fees, bucket overage. Pure.

**Usage priced at close.** A line whose model needs the period's whole quantity (graduated, volume,
package, an included quantity, snapshots) prices the quantity of all its records of the period at once:
deltas are summed, snapshots aggregated as the service says (`snapshots.aggregate`, with the count carried in
from before the span the assignment covers: ``CarriedIn``), the included quantity
deducted, and the rest priced by the model in force on the **last day of the period the assignment covers**
(a mid-period price change to such a line applies to the whole period). One charge per piece (tier,
package count, flat fee), each carrying the whole calculation.

**Fixed fees** (lines of ``Fixed`` services, and bundle lines at the bundle's price) are charged per service
cycle of the plan's frequency, prorated by days (`proration`): the days the assignment is in force and
neither the client, the assignment nor the service is suspended or cancelled. ``arrears``: a cycle's fee is
charged when the cycle closes. ``advance``: when a cycle closes, the next cycle's fee is charged with it, as
known then; the first cycle is charged when it closes. Either way, when a cycle closes its fee is settled:
the final amount is compared with what was already charged for it and only the difference is charged, as
an adjustment referencing those charges (a suspension after an advance charge is credited back).

**Re-rating.** When a record arrives for a period already closed, the period's line is priced again with it
and the difference to what was sent is charged in the open period (never rewriting a sent charge). A late
snapshot also changes the count carried into later closed periods: the caller prices those again the same way.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from uuid import UUID

from services.rating.domain import models
from services.rating.domain.buckets import Settlement
from services.rating.domain.line_pricing import (
    LineTerms,
    billable_after_included,
    line_terms,
    pieces_between,
    price_quantity,
)
from services.rating.domain.pricing import PlanCandidate
from services.rating.domain.proration import billable_runs, exact_share, split_at
from services.rating.domain.quantities import prorated_quantity
from services.rating.domain.snapshots import aggregate
from services.rating.domain.time_entries import amount_for_hours
from shared.contracts.catalog import (
    BucketDefinition,
    BundleState,
    CompanyState,
    PlanLine,
    ServiceState,
    SnapshotAggregation,
    StatusChange,
)
from shared.contracts.rating import BucketDetail, ChargeCreated, PriceRule, Proration, TierLine
from shared.periods import Period

ZERO = Decimal(0)
_EXACT_SUM = Context(prec=200)  # sums and differences of charges: no digit lost
LineTermsFor = Callable[[date], LineTerms]


@dataclass(frozen=True, slots=True)
class UsageRecord:
    record_id: UUID
    occurred_at: datetime
    kind: str  # delta or snapshot
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class CarriedIn:
    """The count in force when the covered span starts: the latest snapshot before it (same client and
    service), counted as a snapshot at ``at``, the span's first instant."""

    record: UsageRecord
    at: datetime


def span_start(candidate: PlanCandidate, period: Period) -> date:
    """The first day of ``period`` the assignment covers: where a carried-in count starts to count."""
    return max(period.start, candidate.assignment.start_date)


@dataclass(frozen=True, slots=True)
class Priced:
    """A rule's charges with the key that groups them (what a later re-rating compares with)."""

    rule_key: str
    charges: list[ChargeCreated]

    @property
    def total(self) -> Decimal:
        """Exact: prorated shares carry 60 digits, and an adjustment must cancel them to the last one."""
        total = ZERO
        for c in self.charges:
            total = _EXACT_SUM.add(total, c.amount)
        return total


def tier_lines(pieces: Sequence[models.Piece]) -> list[TierLine]:
    return [
        TierLine(
            quantity=p.quantity,
            unit_price=p.unit_price,
            amount=p.amount,
            unit=p.unit,
            tier=p.tier,
            tier_from=p.tier_from,
            tier_up_to=p.tier_up_to,
        )
        for p in pieces
    ]


def explain(pieces: Sequence[models.Piece]) -> str:
    parts = []
    for p in pieces:
        where = ""
        if p.tier is not None:
            upper = "inf" if p.tier_up_to is None else p.tier_up_to
            where = f" (tier {p.tier + 1}, ({p.tier_from}, {upper}])"
        label = {"flat_fee": " flat fee", "package": " packages"}.get(p.unit, "")
        parts.append(f"{p.quantity}{label} x {p.unit_price}{where}")
    return " + ".join(parts) + f" = {models.total(list(pieces))}"


def usage_rule_key(candidate: PlanCandidate, line_index: int, period: Period) -> str:
    return f"usage:{candidate.assignment.assignment_id}:{line_index}:{period.start.isoformat()}"


def covered_span(candidate: PlanCandidate, period: Period) -> Period:
    """The days of ``period`` the assignment covers: ``[max(start), min(end))`` of the two."""
    a = candidate.assignment
    end = period.end if a.end_date is None else min(period.end, a.end_date)
    start = span_start(candidate, period)
    return Period(start, max(end, start + timedelta(days=1)))


def included_for(line: PlanLine, period: Period, span: Period) -> Decimal:
    """The line's included quantity for the covered span: prorated by days when the assignment covers only part
    of the period (docs/billing-rules.md §3), unless the line says ``prorate_included: false``."""
    if not line.prorate_included:
        return line.included_quantity
    return prorated_quantity(line.included_quantity, days=span.days, of_days=period.days)


def period_quantity(
    service: ServiceState,
    records: Sequence[UsageRecord],
    *,
    span_bounds: tuple[datetime, datetime],
    carried_in: CarriedIn | None = None,
) -> Decimal:
    deltas = sum((r.quantity for r in records if r.kind == "delta"), ZERO)
    snaps = [(r.occurred_at, r.record_id, r.quantity) for r in records if r.kind != "delta"]
    how = service.snapshot_aggregation or SnapshotAggregation.PEAK
    carried = None if carried_in is None else (carried_in.at, carried_in.record.record_id, carried_in.record.quantity)
    counted = snaps or carried is not None
    if not counted:
        return deltas
    start, end = span_bounds
    return deltas + aggregate(how, snaps, span_start=start, span_end=end, carried_in=carried)


def _carried_note(service: ServiceState, records: Sequence[UsageRecord], carried_in: CarriedIn | None) -> str:
    if carried_in is None:
        return ""
    snaps = sorted(r.occurred_at for r in records if r.kind != "delta")
    if snaps and snaps[0] <= carried_in.at:
        return ""  # a snapshot of the period replaced it at the span's start
    r = carried_in.record
    return (
        f"{r.quantity} {service.unit} carried in from the snapshot of {r.occurred_at.isoformat()} "
        f"(record {r.record_id}), in force from {carried_in.at.isoformat()}; "
    )


def price_usage_line(
    *,
    company: CompanyState,
    candidate: PlanCandidate,
    line_index: int,
    service: ServiceState,
    period: Period,
    records: Sequence[UsageRecord],
    span_bounds: tuple[datetime, datetime],
    day_of: Callable[[datetime], date] | None = None,
    carried_in: CarriedIn | None = None,
) -> Priced:
    """The line's charges for the period. ``span_bounds``: the first instants of the covered span's first day
    and of the day after it (`covered_span`, in the tenant's time zone). ``day_of`` gives a record's
    tenant-local day (UTC when not given); it matters only when the line's price changes inside the period.
    ``carried_in``: the snapshot count in force at the start of the span the assignment covers (a source
    record of every charge, named in the explanation)."""
    line = candidate.plan.lines[line_index]
    span = covered_span(candidate, period)
    last = span.end - timedelta(days=1)
    key = usage_rule_key(candidate, line_index, period)
    quantity = period_quantity(service, records, span_bounds=span_bounds, carried_in=carried_in)
    included = included_for(line, period, span)
    changes = sorted({p.effective_from for p in line.prices if period.start < p.effective_from <= last})
    if changes and carried_in is None and all(r.kind == "delta" for r in records):
        return _price_by_segment(
            company,
            candidate,
            line_index,
            service,
            period,
            records,
            key,
            quantity,
            changes,
            day_of or _utc_day,
            included,
            span,
        )
    terms = line_terms(service, line, last)
    pieces = price_quantity(terms, quantity, included=included)
    note = _carried_note(service, records, carried_in)
    carried_ids = [carried_in.record.record_id] if note and carried_in is not None else []
    ids = sorted([r.record_id for r in records] + carried_ids, key=str)
    charges = [
        _piece_charge(
            company, candidate, line_index, service, period, terms, p, pieces, i, key, ids, quantity, included
        )
        for i, p in enumerate(pieces)
    ]
    if note:
        charges = [c.model_copy(update={"explanation": note + (c.explanation or "")}) for c in charges]
    return Priced(key, charges)


def _utc_day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def _price_by_segment(
    company: CompanyState,
    candidate: PlanCandidate,
    line_index: int,
    service: ServiceState,
    period: Period,
    records: Sequence[UsageRecord],
    key: str,
    quantity: Decimal,
    changes: list[date],
    day_of: Callable[[datetime], date],
    included: Decimal,
    span: Period,
) -> Priced:
    """A line whose price changes inside the period: each segment's units (by the record's local day) are
    priced by the terms in force in that segment, at their place in the period's running quantity — units
    ``(before, after]`` of the quantity beyond the included one (`pieces_between`). Tiers are reached by the
    period's whole quantity, not restarted per segment, and with one price throughout this is exactly the
    whole-period price."""
    line = candidate.plan.lines[line_index]
    bounds = [period.start, *changes, period.end]
    running = ZERO
    charges: list[ChargeCreated] = []
    for start, end in itertools.pairwise(bounds):
        inside = [r for r in records if start <= day_of(r.occurred_at) < end]
        if not inside:
            continue
        before = running
        running += sum((r.quantity for r in inside), ZERO)
        terms = line_terms(service, line, start)
        pieces = pieces_between(
            terms,
            billable_after_included(before, included),
            billable_after_included(running, included),
        )
        ids = sorted((r.record_id for r in inside), key=str)
        for piece in pieces:
            charge = _piece_charge(
                company, candidate, line_index, service, period, terms, piece, pieces, 0, key, ids, quantity, included
            )
            first = max(start, span.start)
            days = Period(first, max(min(end, span.end), first + timedelta(days=1)))
            n = len(charges)
            charges.append(
                charge.model_copy(
                    update={
                        "charge_id": uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{key}:{start.isoformat()}:{n}"),
                        "description": f"{charge.description} ({start.isoformat()} to {end.isoformat()})",
                        "service_period_start": days.start,
                        "service_period_end": days.end,
                        "explanation": (
                            f"price in force from {start.isoformat()} ({terms.rate_source}) for units "
                            f"({before}, {running}] of the period's {quantity} {service.unit}"
                            + (f", {included} included" if included else "")
                            + f": {explain(pieces)}"
                        ),
                    }
                )
            )
    return Priced(key, charges)


def _piece_unit(service: ServiceState, piece: models.Piece, terms: LineTerms) -> str:
    if piece.unit == "flat_fee":
        return "fee"
    if piece.unit == "package":
        return f"package of {terms.terms.package_size} {service.unit}"
    return service.unit


def _piece_charge(
    company: CompanyState,
    candidate: PlanCandidate,
    line_index: int,
    service: ServiceState,
    period: Period,
    terms: LineTerms,
    piece: models.Piece,
    pieces: Sequence[models.Piece],
    n: int,
    key: str,
    record_ids: list[UUID],
    quantity: Decimal,
    included: Decimal,
) -> ChargeCreated:
    span = covered_span(candidate, period)
    tier = f" (tier {piece.tier + 1})" if piece.tier is not None and len(pieces) > 1 else ""
    fee = " flat fee" if piece.unit == "flat_fee" else ""
    return ChargeCreated(
        charge_id=uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{key}:{n}"),
        tenant_id=company.tenant_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        period_start=period.start,
        period_end=period.end,
        kind="usage",
        service_id=service.service_id,
        service_ref=service.code,
        description=f"{service.name}{tier}{fee}",
        quantity=piece.quantity,
        unit=_piece_unit(service, piece, terms),
        unit_price=piece.unit_price,
        amount=piece.amount,
        currency=candidate.plan.currency,
        source_records=record_ids,
        price_rule=PriceRule(
            plan_id=candidate.plan.plan_id, model=terms.model, rate=piece.unit_price, rate_source=terms.rate_source
        ),
        assignment_id=candidate.assignment.assignment_id,
        plan_line=line_index,
        tiers=tier_lines(pieces),
        included_quantity=included,
        total_quantity=quantity,
        service_period_start=span.start,
        service_period_end=span.end,
        explanation=(f"{quantity} {service.unit} - {included} included: " if included else "") + explain(pieces),
    )


# -- fixed fees ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FixedTarget:
    """What a fixed line charges for: a Fixed service, or a bundle at the bundle's price."""

    service_id: UUID
    code: str
    name: str
    unit: str
    kind: str  # fixed or bundle


def fixed_target(
    line: PlanLine, services: dict[UUID, ServiceState], bundles: dict[UUID, BundleState]
) -> FixedTarget | None:
    if line.bundle_id is not None:
        bundle = bundles.get(line.bundle_id)
        if bundle is None:
            return None
        return FixedTarget(bundle.bundle_id, f"bundle:{bundle.name}", bundle.name, "bundle", "bundle")
    service = services.get(line.service_id) if line.service_id else None
    if service is None or service.service_type != "Fixed":
        return None
    return FixedTarget(service.service_id, service.code, service.name, service.unit, "fixed")


def fixed_rule_key(candidate: PlanCandidate, line_index: int, cycle: Period) -> str:
    return f"fixed:{candidate.assignment.assignment_id}:{line_index}:{cycle.start.isoformat()}"


def fixed_fee(
    *,
    company: CompanyState,
    candidate: PlanCandidate,
    line_index: int,
    target: FixedTarget,
    unit_price_on: LineTermsFor,
    cycle: Period,
    billed_in: Period,
    history: Sequence[StatusChange],
) -> Priced:
    """The fee of one line for one service ``cycle``, booked into billing period ``billed_in``."""
    line = candidate.plan.lines[line_index]
    currency = candidate.plan.currency
    runs = billable_runs(cycle, candidate.assignment, history, service_id=target.service_id)
    runs = split_at(runs, [p.effective_from for p in line.prices])
    key = fixed_rule_key(candidate, line_index, cycle)
    charges: list[ChargeCreated] = []
    for run in runs:
        terms = unit_price_on(run.start)
        pieces = price_quantity(terms, line.quantity)
        full = models.total(pieces)
        whole = run == cycle
        amount = exact_share(full, cycle, run)  # exact: the invoice line applies the remainder rule
        proration = None
        if not whole:
            proration = Proration(
                days=run.days, cycle_days=cycle.days, full_price=full, first_day=run.start, end_day=run.end
            )
        charges.append(
            ChargeCreated(
                charge_id=uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{key}:{run.start.isoformat()}:{run.end.isoformat()}"),
                tenant_id=company.tenant_id,
                company_id=company.company_id,
                company_ref=company.company_ref,
                period_start=billed_in.start,
                period_end=billed_in.end,
                kind=target.kind,
                service_id=target.service_id,
                service_ref=target.code,
                description=target.name
                + ("" if whole else f" ({run.start.isoformat()} to {run.end.isoformat()}, prorated)"),
                quantity=line.quantity if whole else Decimal(1),
                unit=target.unit if whole else "prorated period",
                unit_price=(full / line.quantity if whole and line.quantity else amount),
                amount=amount,
                currency=currency,
                source_records=[],
                price_rule=PriceRule(
                    plan_id=candidate.plan.plan_id,
                    model=terms.model,
                    rate=full,
                    rate_source=terms.rate_source,
                ),
                assignment_id=candidate.assignment.assignment_id,
                plan_line=line_index,
                tiers=tier_lines(pieces),
                service_period_start=cycle.start,
                service_period_end=cycle.end,
                proration=proration,
                explanation=(
                    f"{explain(pieces)} for the cycle {cycle.start.isoformat()} to {cycle.end.isoformat()}"
                    + (
                        ""
                        if whole
                        else f"; days {(run.start - cycle.start).days} to {(run.end - cycle.start).days} of "
                        f"{cycle.days}: {full} x {run.days} / {cycle.days} = {amount} (the invoice line rounds it "
                        "by the remainder rule)"
                    )
                ),
            )
        )
    return Priced(key, charges)


# -- adjustments -----------------------------------------------------------------------------------------


def adjustment(
    *,
    priced: Priced,
    sent_total: Decimal,
    sent_ids: Sequence[UUID],
    billed_in: Period,
    reason: str,
    template: ChargeCreated | None = None,
    sent: Sequence[ChargeCreated] = (),
) -> ChargeCreated | None:
    """The difference between a rule's re-rated charges and what was already sent for it (None if none).

    The adjustment describes itself like the rule's charges (``template``, a sent one, when the rule now
    has none: a cycle charged in advance and then suspended throughout is credited in full). The prorated
    shares inside the difference (the new charges' and, negated, those of ``sent``) go with it, so the invoice
    line rounds them by the remainder rule (docs/billing-rules.md §4)."""
    diff = _EXACT_SUM.subtract(priced.total, sent_total)
    model = priced.charges[0] if priced.charges else template
    if diff == 0 or model is None:
        return None
    pieces = [*_pieces(priced.charges), *(_negated(p) for p in _pieces(sent))]
    return model.model_copy(
        update={
            "charge_id": uuid.uuid5(uuid.NAMESPACE_URL, f"adjust:{priced.rule_key}:{priced.total}:{len(sent_ids)}"),
            "period_start": billed_in.start,
            "period_end": billed_in.end,
            "description": f"{model.description.split(' (')[0]} adjustment ({reason})",
            "quantity": Decimal(1),
            "unit": "adjustment",
            "unit_price": diff,
            "amount": diff,
            "corrects_charge_ids": sorted(sent_ids, key=str),
            "late": True,
            "proration": None,
            "prorated_pieces": pieces,
            "explanation": f"re-rated {priced.rule_key}: {priced.total} now, {sent_total} already charged, "
            f"difference {diff}",
        }
    )


def _pieces(charges: Sequence[ChargeCreated]) -> list[Proration]:
    return [p for c in charges for p in ([c.proration] if c.proration else c.prorated_pieces)]


def _negated(p: Proration) -> Proration:
    return p.model_copy(update={"full_price": -p.full_price})


# -- buckets ---------------------------------------------------------------------------------------------


def bucket_rule_key(candidate: PlanCandidate, bucket_period: Period) -> str:
    return f"bucket:{candidate.assignment.assignment_id}:{bucket_period.start.isoformat()}"


def bucket_overage(
    *,
    company: CompanyState,
    candidate: PlanCandidate,
    definition: BucketDefinition,
    settlement: Settlement,
    bucket_period: Period,
    billed_in: Period,
    service_of: dict[UUID, ServiceState],
    line_of: dict[UUID, int],
) -> Priced:
    """Overage hours of a settled bucket period at the overage rate, one charge per service they were on."""
    key = bucket_rule_key(candidate, bucket_period)
    by_service: dict[UUID, list[tuple[UUID, Decimal]]] = {}
    for use in settlement.uses:
        if use.overage > 0:
            by_service.setdefault(service_of[use.record_id].service_id, []).append((use.record_id, use.overage))
    detail = BucketDetail(
        bucket_period_start=bucket_period.start,
        bucket_period_end=bucket_period.end,
        allocation=settlement.allocation,
        rolled_in=settlement.rolled_in,
        used=settlement.used,
        overage=settlement.overage,
        remaining=settlement.remaining,
        rolled_out=settlement.rolled_out_hours,
    )
    charges = []
    for service_id, uses in sorted(by_service.items(), key=lambda kv: str(kv[0])):
        service = next(service_of[r] for r, _ in uses)
        hours = sum((h for _, h in uses), ZERO)
        charges.append(
            ChargeCreated(
                charge_id=uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{key}:{service_id}"),
                tenant_id=company.tenant_id,
                company_id=company.company_id,
                company_ref=company.company_ref,
                period_start=billed_in.start,
                period_end=billed_in.end,
                kind="bucket_overage",
                service_id=service_id,
                service_ref=service.code,
                description=f"{service.name} (hours beyond the bucket)",
                quantity=hours,
                unit="hour",
                unit_price=definition.overage_rate,
                amount=amount_for_hours(hours, definition.overage_rate),  # a true half cent stays one
                currency=candidate.plan.currency,
                source_records=sorted((r for r, _ in uses), key=str),
                price_rule=PriceRule(
                    plan_id=candidate.plan.plan_id,
                    model="bucket_overage",
                    rate=definition.overage_rate,
                    rate_source="plan_bucket_overage_rate",
                ),
                assignment_id=candidate.assignment.assignment_id,
                plan_line=line_of.get(service_id),
                service_period_start=bucket_period.start,
                service_period_end=bucket_period.end,
                bucket=detail,
                explanation=(
                    f"{settlement.allocation} h allocated + {settlement.rolled_in} h carried in; "
                    f"{settlement.used + settlement.overage} h worked in time order; {hours} h of them on "
                    f"{service.code} beyond the bucket x {definition.overage_rate}"
                ),
            )
        )
    return Priced(key, charges)
