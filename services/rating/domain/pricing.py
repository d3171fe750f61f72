"""Pricing a usage record against a client's plans: pure, no I/O, no clock.

This is the walking skeleton's rule set: a ``delta`` record of a ``Usage`` service on an active plan line,
priced flat at full precision with the line's price in force on the record's day (`price_on`: its
effective-dated ``prices``, else its custom rate or per_unit pricing, else the service's default rate).
Tiers, packages, snapshots, buckets, bundle charges and proration arrive with the rating issue as further
strategies beside ``flat``; until then a line whose in-force price is such a model, or a service sold
inside a bundle, is parked, never charged at a wrong price.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    CompanyState,
    LinePrice,
    PerUnitPricing,
    PlanLine,
    PlanState,
    PriceTerms,
    ServiceState,
    price_on,
    rate_of,
)
from shared.contracts.metering import AcceptedUsage
from shared.contracts.rating import ChargeCreated, PriceRule
from shared.periods import BillingFrequency, Period, period_containing


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


def _line_for(plan: PlanState, service: ServiceState) -> PlanLine | None:
    return next((line for line in plan.lines if line.service_id == service.service_id), None)


def _bundle_for(plan: PlanState, service: ServiceState, bundles: Mapping[UUID, BundleState]) -> BundleState | None:
    held = (bundles.get(line.bundle_id) for line in plan.lines if line.bundle_id is not None)
    return next((b for b in held if b is not None and service.service_id in b.service_ids), None)


def price_usage(
    record: AcceptedUsage,
    *,
    day: date,
    company: CompanyState,
    service: ServiceState | None,
    candidates: list[PlanCandidate],
    bundles: Mapping[UUID, BundleState] | None = None,
) -> tuple[ChargeCreated, BillingFrequency] | Unrated:
    """Price one record that occurred on ``day`` (the tenant's local date).

    A service a plan sells inside a bundle is billed at the bundle's price, never its own: until bundle
    charges exist (rating issue) such usage is parked with that reason rather than charged per service.
    """
    if service is None:
        return Unrated(f"service {record.service_ref!r} is not in rating's catalog view yet")
    if record.kind != "delta":
        return Unrated("snapshot usage is priced by the rating issue's snapshot aggregation (not yet built)")
    for candidate in rank_candidates(candidates, service):
        line = _line_for(candidate.plan, service)
        if not _active_on(candidate.assignment, day):
            continue
        if line is None and (bundle := _bundle_for(candidate.plan, service, bundles or {})) is not None:
            return Unrated(
                f"service {service.code!r} is sold in bundle {bundle.name!r} on plan {candidate.plan.name!r} at "
                f"the bundle price ({bundle.price} {bundle.currency}), not per service: bundle charges are not "
                "built yet (rating issue)"
            )
        if line is None:
            continue
        terms = price_on(line, day)
        if terms.pricing is not None and not isinstance(terms.pricing, PerUnitPricing):
            return Unrated(
                f"pricing model {terms.pricing.model} is priced by the rating issue (plan "
                f"{candidate.plan.name!r}, service {service.code!r}); not charged at a flat rate meanwhile"
            )
        source = _rate_source(terms)
        if source == "service_default_rate" and service.currency != candidate.plan.currency:
            return Unrated(
                f"service {service.code!r} has its default rate in {service.currency} but plan "
                f"{candidate.plan.name!r} is in {candidate.plan.currency}: set a custom rate"
            )
        frequency = BillingFrequency(candidate.plan.billing_frequency)
        period = period_containing(day, frequency=frequency, anchor=company.billing_anchor)
        rule = PriceRule(
            plan_id=candidate.plan.plan_id,
            model="flat",
            rate=rate_of(service, line, day=day),
            rate_source=source,
        )
        return _charge(record, company, service, candidate.plan, period, rule), frequency
    return Unrated(
        f"no active plan of client {company.company_ref!r} covers service {service.code!r} on {day.isoformat()}"
    )


def _rate_source(terms: PriceTerms) -> str:
    """Which price rule set the rate: traceable to the line, or the dated entry, that produced it."""
    if terms.pricing is None and terms.custom_rate is None:
        return "service_default_rate"
    source = "plan_line_per_unit_price" if terms.pricing is not None else "plan_line_custom_rate"
    return f"{source}@{terms.effective_from.isoformat()}" if isinstance(terms, LinePrice) else source


def _charge(
    record: AcceptedUsage,
    company: CompanyState,
    service: ServiceState,
    plan: PlanState,
    period: Period,
    rule: PriceRule,
) -> ChargeCreated:
    return ChargeCreated(
        charge_id=uuid.uuid5(uuid.NAMESPACE_URL, f"charge:{record.record_id}:{plan.plan_id}"),
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
