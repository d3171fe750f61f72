"""What the catalog checks on a discount (each refusal names its field), and what refuses deleting an
entity a discount is attached to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.catalog.domain.problems import CatalogView, Problem
from shared.contracts.catalog import DiscountState, DiscountType

HUNDRED = 100


def _shape(state: DiscountState) -> list[Problem]:
    problems = []
    if state.discount_type is DiscountType.PERCENTAGE:
        if not 0 < state.value <= HUNDRED:
            problems.append(Problem("value", "a percentage must be greater than 0 and at most 100"))
        if state.currency is not None:
            problems.append(Problem("currency", "only a fixed_amount discount has a currency"))
    else:
        if not state.value > 0:
            problems.append(Problem("value", "a fixed amount must be greater than 0"))
        if state.currency is None:
            problems.append(Problem("currency", "a fixed_amount discount needs its currency"))
    if state.valid_from is not None and state.valid_to is not None and state.valid_to <= state.valid_from:
        problems.append(Problem("valid_to", "must be after valid_from (the end is exclusive)"))
    return problems


def _attachment(state: DiscountState) -> list[Problem]:
    """Exactly one of plan_id, service_id, company_id, or plan_id with company_id (a client on a plan)."""
    if state.service_id is not None and (state.plan_id is not None or state.company_id is not None):
        return [Problem("service_id", "a service discount names no plan_id or company_id")]
    if state.service_id is None and state.plan_id is None and state.company_id is None:
        return [Problem("plan_id", "attach the discount to a plan_id, a service_id or a company_id")]
    return []


async def _references(state: DiscountState, view: CatalogView) -> list[Problem]:
    problems = []
    for field, entity_type, noun in (
        ("plan_id", "plan", "plan"),
        ("service_id", "service", "service"),
        ("company_id", "company", "client"),
    ):
        entity_id = getattr(state, field)
        if entity_id is None:
            continue
        found = await view.get(entity_type, entity_id)
        if found is None:
            problems.append(Problem(field, f"{noun} {entity_id} does not exist"))
        elif (
            state.discount_type is DiscountType.FIXED_AMOUNT
            and entity_type in ("plan", "service")
            and state.currency is not None
            and found.currency != state.currency
        ):
            problems.append(Problem("currency", f"the {noun} is priced in {found.currency}"))
    return problems


async def discount_is_well_formed(state: DiscountState, _: Any, view: CatalogView) -> list[Problem]:
    return _shape(state) + _attachment(state) + await _references(state, view)


def no_discounts_attached(field: str, noun: str) -> Callable[[Any, CatalogView], Awaitable[list[Problem]]]:
    """A delete rule: the plan, service or client has no discount attached (delete or move those first)."""

    async def rule(state: Any, view: CatalogView) -> list[Problem]:
        attached = await view.find("discount", **{field: str(getattr(state, field))})
        if not attached:
            return []
        names = ", ".join(sorted(repr(d.name) for d in attached))
        return [Problem(field, f"the {noun} has discount(s) {names}: delete them first", conflict=True)]

    return rule
