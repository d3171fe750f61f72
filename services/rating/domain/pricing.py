"""Routing each accepted record to what rating does with it, and pricing the ones charged on arrival. Pure.

Which plan: `rank_candidates` (the catalog's documented precedence) picks exactly one of the client's
active assignments that covers the service, so no record is ever priced by two plans. Then:
- usage on a flat per-unit line with nothing included is charged at once (`price_usage`);
- usage on a tiered, volume or package line, with an included quantity, or a snapshot, is deferred to the
  period's close (`close_pricing`), because its price depends on the period's whole quantity;
- time is charged at once (`price_time`), or used against the plan's bucket at the bucket period's close;
- non-billable time, days on which the client, assignment or service is suspended or cancelled, and
  services sold inside a bundle are recorded and never charged.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from uuid import UUID

from services.rating.domain.line_pricing import line_terms
from services.rating.domain.time_entries import NoTimeRate, billable_minutes, hours_of, time_rate
from shared.client_status import status_on
from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    ClientStatus,
    CompanyState,
    PlanLine,
    PlanState,
    ServiceState,
    StatusChange,
    UserState,
)
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.rating import ChargeCreated, PriceRule
from shared.periods import BillingFrequency, Period
from shared.periods import period_containing as _period_containing

_PRECISE = Context(prec=60)

# Pure, and a batch's records share a handful of (day, frequency, anchor): computing a month boundary takes
# dateutil arithmetic that otherwise dominates pricing a record.
period_containing = functools.lru_cache(maxsize=4096)(_period_containing)


@dataclass(frozen=True, slots=True)
class Unrated:
    reason: str


@dataclass(frozen=True, slots=True)
class PlanCandidate:
    assignment: AssignmentState
    plan: PlanState


def rank_candidates(candidates: list[PlanCandidate], service: ServiceState) -> list[PlanCandidate]:
    """Which of a client's plans prices a service when more than one could, best first.

    1. An assignment scoped to a service category prices only services of that category, and wins over
       unscoped assignments for them (an assignment scoped to another category never prices the service).
    2. A custom plan (made for this client) wins over a template plan.
    3. The assignment that started most recently wins (a newer arrangement supersedes an older one).
    4. Ties go to the lowest assignment id, so the choice is deterministic.
    """
    category = str(service.category_id) if service.category_id is not None else None
    eligible = [
        c for c in candidates if c.assignment.service_category is None or c.assignment.service_category == category
    ]
    return sorted(
        eligible,
        key=lambda c: (
            c.assignment.service_category is None,
            not c.plan.is_custom,
            -c.assignment.start_date.toordinal(),
            str(c.assignment.assignment_id),
        ),
    )


def _active_on(a: AssignmentState, day: date) -> bool:
    return a.start_date <= day and (a.end_date is None or day < a.end_date)


def _line_for(plan: PlanState, service: ServiceState) -> tuple[int, PlanLine] | None:
    return next(((i, line) for i, line in enumerate(plan.lines) if line.service_id == service.service_id), None)


def _bundle_for(plan: PlanState, service: ServiceState, bundles: Mapping[UUID, BundleState]) -> BundleState | None:
    held = (bundles.get(line.bundle_id) for line in plan.lines if line.bundle_id is not None)
    return next((b for b in held if b is not None and service.service_id in b.service_ids), None)


@dataclass(frozen=True, slots=True)
class Deferred:
    """Priced later: ``at_close`` (the line's model needs the period's whole quantity: tiers, packages,
    included quantities, snapshots) or ``bucket`` (hours used against a bucket, in time order)."""

    disposition: str
    candidate: PlanCandidate
    line_index: int
    period: Period
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Recorded:
    """Kept in rating's ledger and never charged: non-billable time, a day on which the client, the
    assignment or the service is suspended or cancelled, or a service sold inside a bundle."""

    disposition: str
    note: str
    candidate: PlanCandidate | None
    period: Period


Routed = tuple[ChargeCreated, BillingFrequency] | Deferred | Recorded | Unrated


def _covering(
    candidates: list[PlanCandidate], service: ServiceState, day: date, bundles: Mapping[UUID, BundleState]
) -> tuple[PlanCandidate, int, PlanLine] | tuple[PlanCandidate, BundleState] | None:
    """The one plan (by `rank_candidates`) that prices the service on ``day``: so no record is priced twice."""
    for candidate in rank_candidates(candidates, service):
        if not _active_on(candidate.assignment, day):
            continue
        found = _line_for(candidate.plan, service)
        if found is None and (bundle := _bundle_for(candidate.plan, service, bundles)) is not None:
            return candidate, bundle
        if found is not None:
            return candidate, found[0], found[1]
    return None


def _status_note(
    history: Sequence[StatusChange], day: date, candidate: PlanCandidate, service: ServiceState
) -> str | None:
    status = status_on(history, day, assignment_id=candidate.assignment.assignment_id, service_id=service.service_id)
    if status is ClientStatus.ACTIVE:
        return None
    return f"service {service.code!r} is {status.value} on {day.isoformat()} (client status history): not charged"


def price_usage(
    record: AcceptedUsage,
    *,
    day: date,
    company: CompanyState,
    service: ServiceState | None,
    candidates: list[PlanCandidate],
    bundles: Mapping[UUID, BundleState] | None = None,
    history: Sequence[StatusChange] = (),
) -> Routed:
    """Route one usage record that occurred on ``day`` (the tenant's local date).

    A ``delta`` record on a line whose price in force is a flat rate, with nothing included, is charged at
    once. Tiers, packages, included quantities and snapshots need the period's whole quantity: such records
    are deferred to the period's close. A service a plan sells inside a bundle is recorded, not charged
    (the bundle's fixed price covers it).
    """
    if service is None:
        return Unrated(f"service {record.service_ref!r} is not in rating's catalog view yet")
    found = _covering(candidates, service, day, bundles or {})
    if found is None:
        return Unrated(
            f"no active plan of client {company.company_ref!r} covers service {service.code!r} on {day.isoformat()}"
        )
    candidate = found[0]
    frequency = BillingFrequency(candidate.plan.billing_frequency)
    period = period_containing(day, frequency=frequency, anchor=company.billing_anchor)
    if len(found) == 2:
        bundle = found[1]
        note = (
            f"service {service.code!r} is sold in bundle {bundle.name!r} on plan {candidate.plan.name!r} at the "
            f"bundle price ({bundle.price} {bundle.currency}), not per service"
        )
        return Recorded("in_bundle", note, candidate, period)
    _, index, line = found
    if (status_note := _status_note(history, day, candidate, service)) is not None:
        return Recorded("not_billed_status", status_note, candidate, period)
    terms = line_terms(service, line, day)
    if terms.rate_source == "service_default_rate" and service.currency != candidate.plan.currency:
        return Unrated(
            f"service {service.code!r} has its default rate in {service.currency} but plan "
            f"{candidate.plan.name!r} is in {candidate.plan.currency}: set a custom rate"
        )
    if record.kind != "delta" or not terms.per_record or line.included_quantity > 0:
        return Deferred("at_close", candidate, index, period, record.quantity)
    rule = PriceRule(
        plan_id=candidate.plan.plan_id, model="flat", rate=terms.flat_rate(), rate_source=terms.rate_source
    )
    charge = _charge(record, company, service, candidate.plan, period, rule)
    return charge.model_copy(
        update={
            "assignment_id": candidate.assignment.assignment_id,
            "plan_line": index,
            "service_period_start": day,
            "service_period_end": day + timedelta(days=1),
        }
    ), frequency


def price_time(
    record: AcceptedTime,
    *,
    day: date,
    company: CompanyState,
    service: ServiceState | None,
    candidates: list[PlanCandidate],
    bundles: Mapping[UUID, BundleState] | None = None,
    history: Sequence[StatusChange] = (),
    user: UserState | None = None,
) -> Routed:
    """Route one time entry whose work started on ``day``: charged at once at the rate of
    `time_entries.time_rate`, used against the plan's bucket, or recorded (non-billable, suspended)."""
    if service is None:
        return Unrated(f"service {record.service_ref!r} is not in rating's catalog view yet")
    found = _covering(candidates, service, day, bundles or {})
    if found is None:
        return Unrated(
            f"no active plan of client {company.company_ref!r} covers service {service.code!r} on {day.isoformat()}"
        )
    candidate = found[0]
    frequency = BillingFrequency(candidate.plan.billing_frequency)
    period = period_containing(day, frequency=frequency, anchor=company.billing_anchor)
    if not record.billable:
        return Recorded("non_billable", "non-billable time: recorded, never charged", candidate, period)
    if len(found) == 2:
        return Recorded(
            "in_bundle", f"sold in bundle {found[1].name!r}: charged at the bundle price", candidate, period
        )
    _, index, line = found
    if (status_note := _status_note(history, day, candidate, service)) is not None:
        return Recorded("not_billed_status", status_note, candidate, period)
    minutes = billable_minutes(record.start_time, record.end_time, line)
    hours = hours_of(minutes)
    bucket = candidate.plan.bucket
    if bucket is not None:
        bucket_period = period_containing(day, frequency=BillingFrequency(bucket.period), anchor=company.billing_anchor)
        return Deferred("bucket", candidate, index, bucket_period, hours)
    try:
        rate = time_rate(line=line, user=user, service=service, currency=candidate.plan.currency, day=day)
    except NoTimeRate as exc:
        return Unrated(str(exc))
    rule = PriceRule(plan_id=candidate.plan.plan_id, model="flat", rate=rate.rate, rate_source=rate.source)
    worked = (record.end_time - record.start_time).total_seconds() / 60
    charge = ChargeCreated(
        charge_id=uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{record.record_id}:{candidate.plan.plan_id}"),
        tenant_id=record.tenant_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        period_start=period.start,
        period_end=period.end,
        kind="time",
        service_id=service.service_id,
        service_ref=service.code,
        description=service.name,
        quantity=hours,
        unit="hour",
        unit_price=rate.rate,
        amount=_PRECISE.divide(minutes * rate.rate, Decimal(60)),  # full precision; rounded on the invoice line
        currency=candidate.plan.currency,
        source_records=[record.record_id],
        price_rule=rule,
        assignment_id=candidate.assignment.assignment_id,
        plan_line=index,
        service_period_start=day,
        service_period_end=day + timedelta(days=1),
        explanation=(
            f"{worked:g} min worked, billed as {minutes} min (increment {line.rounding_increment_minutes or 'none'}, "
            f"minimum {line.minimum_minutes or 'none'}) = {hours} h x {rate.rate} ({rate.source})"
        ),
    )
    return charge, frequency


def usage_charge_id(record_id: UUID, plan_id: UUID) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{record_id}:{plan_id}")


def route_like(routed: Routed, record: AcceptedUsage) -> Routed:
    """How ``record`` is routed, given how another usage record of the same client, service, local day and
    kind was routed (``price_usage``'s decision depends on nothing else): the same plan, line, period,
    disposition and price; only the record's id, quantity and amount are its own. A batch routes each
    (client, service, day, kind) once and each record with this.
    """
    if isinstance(routed, tuple):
        charge, frequency = routed
        plan_id = charge.price_rule.plan_id
        assert plan_id is not None  # price_usage always names the plan
        update = {
            "charge_id": usage_charge_id(record.record_id, plan_id),
            "quantity": record.quantity,
            "amount": record.quantity * charge.unit_price,  # full precision; rounded on the invoice line
            "source_records": [record.record_id],
        }
        return charge.model_copy(update=update), frequency
    if isinstance(routed, Deferred):
        return dataclasses.replace(routed, quantity=record.quantity)
    return routed


def _charge(
    record: AcceptedUsage,
    company: CompanyState,
    service: ServiceState,
    plan: PlanState,
    period: Period,
    rule: PriceRule,
) -> ChargeCreated:
    return ChargeCreated(
        charge_id=usage_charge_id(record.record_id, plan.plan_id),
        tenant_id=record.tenant_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        period_start=period.start,
        period_end=period.end,
        kind="usage",
        service_id=service.service_id,
        service_ref=service.code,
        description=service.name,
        quantity=record.quantity,
        unit=service.unit,
        unit_price=rule.rate,
        amount=record.quantity * rule.rate,  # full precision; rounded on the invoice line
        currency=plan.currency,
        source_records=[record.record_id],
        price_rule=rule,
    )


def move_to_period(charge: ChargeCreated, period: Period) -> ChargeCreated:
    """A record for a closed period is charged in the open one, marked late (a final invoice never changes)."""
    return charge.model_copy(update={"period_start": period.start, "period_end": period.end, "late": True})
