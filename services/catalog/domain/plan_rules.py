"""Rules of plans: pricing models and their tiers, effective-dated prices, buckets, custom plans.

The shape checks are pure (`plan_problems`), so they are specified without a database; each problem names
the exact path of the field (``lines.0.pricing.tiers.2.up_to``), which pydantic's own errors cannot do
inside a discriminated union (they insert the member's tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.catalog.domain.problems import CatalogView, Problem
from shared.contracts.catalog import (
    BucketDefinition,
    GraduatedPricing,
    PackagePricing,
    PerUnitPricing,
    PlanLine,
    PlanState,
    PlanType,
    PriceTerms,
    Pricing,
    RolloverPolicy,
    ServiceType,
    Tier,
    VolumePricing,
)


def _negative(value: Decimal | None, field: str) -> list[Problem]:
    return [Problem(field, f"must be >= 0, got {value}")] if value is not None and value < 0 else []


def tier_problems(tiers: Sequence[Tier], *, at: str) -> list[Problem]:
    """Tiers ascend by ``up_to``; exactly the last one is unbounded; prices and fees are non-negative."""
    if not tiers:
        return [Problem(at, "needs at least one tier (the last one unbounded: up_to null)")]
    problems: list[Problem] = []
    previous: Decimal | None = None
    for k, tier in enumerate(tiers):
        here, last = f"{at}.{k}", k == len(tiers) - 1
        if tier.up_to is None and not last:
            problems.append(Problem(f"{here}.up_to", "only the last tier is unbounded (up_to null)"))
        elif tier.up_to is not None and last:
            problems.append(Problem(f"{here}.up_to", "the last tier must be unbounded (up_to null)"))
        if tier.up_to is not None:
            if tier.up_to <= 0:
                problems.append(Problem(f"{here}.up_to", f"must be > 0, got {tier.up_to}"))
            elif previous is not None and tier.up_to <= previous:
                problems.append(
                    Problem(f"{here}.up_to", f"must be greater than the previous tier's up_to ({previous})")
                )
            previous = tier.up_to
        problems += _negative(tier.unit_price, f"{here}.unit_price") + _negative(tier.flat_fee, f"{here}.flat_fee")
    return problems


def pricing_problems(pricing: Pricing, *, at: str) -> list[Problem]:
    if isinstance(pricing, PerUnitPricing):
        return _negative(pricing.unit_price, f"{at}.unit_price")
    if isinstance(pricing, GraduatedPricing | VolumePricing):
        return tier_problems(pricing.tiers, at=f"{at}.tiers")
    if isinstance(pricing, PackagePricing):
        size = [] if pricing.package_size > 0 else [Problem(f"{at}.package_size", "must be > 0")]
        return size + _negative(pricing.package_price, f"{at}.package_price")
    raise TypeError(f"no rules for pricing model {pricing!r}")  # pragma: no cover - the union is closed


def terms_problems(terms: PriceTerms, *, at: str, required: bool = False) -> list[Problem]:
    """custom_rate or pricing, never both; a dated price (``required``) needs one of them."""
    prefix = f"{at}." if at else ""
    problems = _negative(terms.custom_rate, f"{prefix}custom_rate")
    if terms.custom_rate is not None and terms.pricing is not None:
        problems.append(Problem(f"{prefix}pricing", "give custom_rate or pricing, not both"))
    if required and terms.custom_rate is None and terms.pricing is None:
        problems.append(Problem(f"{prefix}custom_rate", "a dated price needs custom_rate or pricing"))
    if terms.pricing is not None:
        problems += pricing_problems(terms.pricing, at=f"{prefix}pricing")
    return problems


def line_problems(line: PlanLine, *, at: str) -> list[Problem]:
    problems = terms_problems(line, at=at)
    if line.quantity <= 0:
        problems.append(Problem(f"{at}.quantity", f"must be > 0, got {line.quantity}"))
    for j, price in enumerate(line.prices):
        here = f"{at}.prices.{j}"
        problems += terms_problems(price, at=here, required=True)
        if j and price.effective_from <= line.prices[j - 1].effective_from:
            problems.append(
                Problem(f"{here}.effective_from", "must be after the previous entry's (ascending, one price per day)")
            )
    return problems


def bucket_problems(plan: PlanState) -> list[Problem]:
    if plan.plan_type == PlanType.BUCKET and plan.bucket is None:
        return [Problem("bucket", "a bucket plan needs its bucket: hours, period, overage_rate (and rollover)")]
    if plan.plan_type != PlanType.BUCKET and plan.bucket is not None:
        return [Problem("bucket", f"only bucket plans have a bucket; this plan is {plan.plan_type}")]
    return [] if plan.bucket is None else _bucket_definition_problems(plan.bucket)


def _bucket_definition_problems(bucket: BucketDefinition) -> list[Problem]:
    problems = [] if bucket.hours > 0 else [Problem("bucket.hours", f"must be > 0, got {bucket.hours}")]
    rollover = bucket.rollover
    wants_max, wants_periods = (
        rollover.policy == RolloverPolicy.CARRY_UP_TO,
        rollover.policy == RolloverPolicy.EXPIRE_AFTER,
    )
    if wants_max and (rollover.max_hours is None or rollover.max_hours <= 0):
        problems.append(Problem("bucket.rollover.max_hours", "carry_up_to needs max_hours > 0"))
    if not wants_max and rollover.max_hours is not None:
        problems.append(Problem("bucket.rollover.max_hours", "only the carry_up_to policy takes max_hours"))
    if wants_periods and (rollover.periods is None or rollover.periods < 1):
        problems.append(Problem("bucket.rollover.periods", "expire_after needs periods >= 1"))
    if not wants_periods and rollover.periods is not None:
        problems.append(Problem("bucket.rollover.periods", "only the expire_after policy takes periods"))
    return problems


def ownership_problems(plan: PlanState) -> list[Problem]:
    """A custom plan belongs to exactly one client; a template to none."""
    if plan.is_custom and plan.company_id is None:
        return [Problem("company_id", "a custom plan belongs to one client: give its company_id")]
    if not plan.is_custom and plan.company_id is not None:
        return [Problem("company_id", "a template plan has no client: set is_custom true, or leave company_id out")]
    return []


def plan_problems(plan: PlanState) -> list[Problem]:
    """Everything about a plan's shape that needs no other entity."""
    problems = ownership_problems(plan) + bucket_problems(plan)
    for i, line in enumerate(plan.lines):
        problems += line_problems(line, at=f"lines.{i}")
    return problems


async def plan_is_well_formed(state: PlanState, _: Any, view: CatalogView) -> list[Problem]:
    problems = plan_problems(state)
    if state.is_custom and state.company_id is not None and await view.get("company", state.company_id) is None:
        problems.append(Problem("company_id", f"client {state.company_id} does not exist"))
    for i, line in enumerate(state.lines):
        if line.service_id is None:
            continue  # a bundle line: priced at the bundle's price, its rules are the bundle's
        service = await view.get("service", line.service_id)
        if service is None:
            continue  # named by the rule that lines refer to services
        if line.quantity != 1 and service.service_type != ServiceType.FIXED:
            problems.append(Problem(f"lines.{i}.quantity", "only Fixed lines bill a quantity per period"))
        for name in ("rounding_increment_minutes", "minimum_minutes"):
            if getattr(line, name) is not None and service.service_type != ServiceType.TIME:
                problems.append(Problem(f"lines.{i}.{name}", "only Time lines round minutes"))
    return problems
