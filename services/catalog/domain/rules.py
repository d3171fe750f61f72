"""The catalog's consistency rules, checked before a save or a delete commits.

Rules read related entities through `CatalogView` (a port: the Postgres repository implements it; a
dict-backed fake does in tests) and answer problems that name the field, so the API can say exactly what
is wrong. A kind's rules are registered in `SAVE_RULES` / `DELETE_RULES` by entity type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.catalog.domain import plan_rules, service_rules
from services.catalog.domain.problems import CatalogView, Problem
from shared.contracts.catalog import AssignmentState, PlanState

__all__ = ["DELETE_RULES", "SAVE_RULES", "CatalogView", "Problem", "problems_deleting", "problems_saving"]

SaveRule = Callable[[Any, Any | None, CatalogView], Awaitable[list[Problem]]]
DeleteRule = Callable[[Any, CatalogView], Awaitable[list[Problem]]]


async def _assignment_refers_to_existing(state: AssignmentState, _: Any, view: CatalogView) -> list[Problem]:
    problems = []
    if await view.get("company", state.company_id) is None:
        problems.append(Problem("company_id", f"client {state.company_id} does not exist"))
    if await view.get("plan", state.plan_id) is None:
        problems.append(Problem("plan_id", f"plan {state.plan_id} does not exist"))
    if state.end_date is not None and state.end_date <= state.start_date:
        problems.append(Problem("end_date", "must be after start_date (the end is exclusive)"))
    return problems


async def _plan_lines_refer_to_services(state: PlanState, _: Any, view: CatalogView) -> list[Problem]:
    return [
        Problem(f"lines.{i}.service_id", f"service {line.service_id} does not exist")
        for i, line in enumerate(state.lines)
        if await view.get("service", line.service_id) is None
    ]


async def _service_not_on_a_plan(state: Any, view: CatalogView) -> list[Problem]:
    plans = [p for p in await view.find("plan") if any(line.service_id == state.service_id for line in p.lines)]
    if not plans:
        return []
    names = ", ".join(sorted(p.name for p in plans))
    return [
        Problem(
            "service_id",
            f"service {state.code!r} is on plan(s) {names}: retire it (active=false) or take it off those plans first",
            conflict=True,
        )
    ]


async def _plan_not_assigned(state: Any, view: CatalogView) -> list[Problem]:
    if await view.find("assignment", plan_id=str(state.plan_id)):
        return [
            Problem(
                "plan_id",
                f"plan {state.name!r} has client assignments: delete those assignments first (an assignment that "
                "has ended still records the client's history)",
                conflict=True,
            )
        ]
    return []


async def _company_without_assignments(state: Any, view: CatalogView) -> list[Problem]:
    if await view.find("assignment", company_id=str(state.company_id)):
        return [
            Problem(
                "company_id", f"client {state.company_ref!r} has plan assignments: delete them first", conflict=True
            )
        ]
    return []


SAVE_RULES: dict[str, list[SaveRule]] = {
    "assignment": [_assignment_refers_to_existing],
    "plan": [_plan_lines_refer_to_services, plan_rules.plan_is_well_formed],
    "service": [service_rules.service_category_exists],
}
DELETE_RULES: dict[str, list[DeleteRule]] = {
    "category": [service_rules.category_not_in_use],
    "service": [_service_not_on_a_plan],
    "plan": [_plan_not_assigned],
    "company": [_company_without_assignments],
}


async def problems_saving(state: Any, before: Any | None, view: CatalogView) -> list[Problem]:
    return [p for rule in SAVE_RULES.get(state.entity_type, []) for p in await rule(state, before, view)]


async def problems_deleting(state: Any, view: CatalogView) -> list[Problem]:
    return [p for rule in DELETE_RULES.get(state.entity_type, []) for p in await rule(state, view)]
