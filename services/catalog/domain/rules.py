"""The catalog's consistency rules, checked before a save or a delete commits.

Rules read related entities through `CatalogView` (a port: the Postgres repository implements it; a
dict-backed fake does in tests) and answer problems that name the field, so the API can say exactly what
is wrong. A kind's rules are registered in `SAVE_RULES` / `DELETE_RULES` by entity type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from services.catalog.domain import dependencies, discount_rules, plan_rules, service_rules
from services.catalog.domain.problems import CatalogView, Problem
from shared.client_status import status_on
from shared.contracts.catalog import AssignmentState, BundleState, ClientStatus, PlanState, ServiceState

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
        if line.service_id is not None and await view.get("service", line.service_id) is None
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


# -- bundles, dependencies, assignment scope (catalog-structure) ---------------------------------------


async def _codes(view: CatalogView, ids: list[UUID]) -> str:
    found = [await view.get("service", i) for i in ids]
    return ", ".join(repr(s.code) if s is not None else str(i) for s, i in zip(found, ids, strict=True))


async def _bundle_members_exist(state: BundleState, _: Any, view: CatalogView) -> list[Problem]:
    problems = [
        Problem(f"service_ids.{i}", f"service {sid} does not exist")
        for i, sid in enumerate(state.service_ids)
        if await view.get("service", sid) is None
    ]
    if len(set(state.service_ids)) != len(state.service_ids):
        problems.append(Problem("service_ids", "lists a service more than once"))
    return problems


async def _plan_bundle_lines(state: PlanState, _: Any, view: CatalogView) -> list[Problem]:
    problems, bundled = [], set()
    for i, line in enumerate(state.lines):
        if line.bundle_id is None:
            continue
        bundle = await view.get("bundle", line.bundle_id)
        if bundle is None:
            problems.append(Problem(f"lines.{i}.bundle_id", f"bundle {line.bundle_id} does not exist"))
        elif bundle.currency != state.currency:
            problems.append(Problem(f"lines.{i}.bundle_id", f"bundle {bundle.name!r} is priced in {bundle.currency}"))
        else:
            bundled |= set(bundle.service_ids)
    return problems + [
        Problem(f"lines.{i}.service_id", "this service is already in a bundle on the plan (billed at the bundle price)")
        for i, line in enumerate(state.lines)
        if line.service_id in bundled and not line.added_as_dependency_of
    ]


async def _service_requirements(state: ServiceState, _: Any, view: CatalogView) -> list[Problem]:
    problems = [
        Problem(f"requires.{i}", f"service {sid} does not exist")
        for i, sid in enumerate(state.requires)
        if sid != state.service_id and await view.get("service", sid) is None
    ]
    if state.service_id in state.requires:
        problems.append(Problem("requires", "a service cannot require itself"))
    graph = await dependencies.load_graph(view, state.requires)
    graph[state.service_id] = list(state.requires)
    if not problems and dependencies.cycle_through(state.service_id, graph):
        problems.append(Problem("requires", "these requirements form a cycle back to this service"))
    return problems


def _overlaps(a: AssignmentState, b: AssignmentState) -> bool:
    return (b.end_date is None or a.start_date < b.end_date) and (a.end_date is None or b.start_date < a.end_date)


def _covers(a: AssignmentState, b: AssignmentState) -> bool:
    """``a`` is active for the whole of ``b``."""
    ends_later = a.end_date is None or (b.end_date is not None and b.end_date <= a.end_date)
    return a.start_date <= b.start_date and ends_later


async def _one_bucket_plan_per_scope(state: AssignmentState, _: Any, view: CatalogView) -> list[Problem]:
    plan = await view.get("plan", state.plan_id)
    if plan is None or plan.plan_type != "bucket":
        return []
    problems = []
    for other in await view.find("assignment", company_id=str(state.company_id)):
        if other.assignment_id == state.assignment_id or other.service_category != state.service_category:
            continue
        other_plan = await view.get("plan", other.plan_id)
        if other_plan is not None and other_plan.plan_type == "bucket" and _overlaps(state, other):
            scope = f"category {state.service_category!r}" if state.service_category else "all categories"
            message = (
                f"overlaps bucket plan {other_plan.name!r} (assignment {other.assignment_id}, from "
                f"{other.start_date}) for {scope}: end that one first or start after it"
            )
            problems.append(Problem("start_date", message, conflict=True))
    return problems


async def _client_has_prerequisites(state: AssignmentState, before: Any, view: CatalogView) -> list[Problem]:
    """Plans are expanded when saved, but a service may gain a prerequisite later: the client's plans
    active for the whole of this assignment must then provide it together. Checked when a client
    subscribes (a new assignment, or another plan), so ending an existing one is never refused."""
    if before is not None and before.plan_id == state.plan_id:
        return []
    plans = [await view.get("plan", state.plan_id)]
    for other in await view.find("assignment", company_id=str(state.company_id)):
        if other.assignment_id != state.assignment_id and _covers(other, state):
            plans.append(await view.get("plan", other.plan_id))
    lines = [line for plan in plans if plan is not None for line in plan.lines]
    provided = dependencies.provided_by(lines, await dependencies.load_bundles(view, lines))
    own = plans[0].lines if plans[0] is not None else []
    own_provided = dependencies.provided_by(own, await dependencies.load_bundles(view, own))
    graph = await dependencies.load_graph(view, provided)
    missing = {s: m for s, m in dependencies.missing_prerequisites(provided, graph).items() if s in own_provided}
    return [
        Problem(
            "plan_id",
            f"service {await _codes(view, [s])} requires {await _codes(view, m)}, which the client's plans "
            "do not provide: save the plan again (it adds prerequisites) or assign a plan with them first",
        )
        for s, m in missing.items()
    ]


async def _client_not_cancelled(state: AssignmentState, before: Any, view: CatalogView) -> list[Problem]:
    """A cancelled client gets no new plans until it is reactivated (its history says so on the start)."""
    record = await view.get("client_status", state.company_id)
    if before is not None or record is None:
        return []
    if status_on(record.history, state.start_date) != ClientStatus.CANCELLED:
        return []
    message = f"client is cancelled on {state.start_date}: record it active again first"
    return [Problem("company_id", message, conflict=True)]


async def _service_not_required_or_bundled(state: Any, view: CatalogView) -> list[Problem]:
    users = [s.code for s in await view.find("service") if state.service_id in s.requires]
    users += [b.name for b in await view.find("bundle") if state.service_id in b.service_ids]
    if not users:
        return []
    message = f"service {state.code!r} is required by or bundled in {', '.join(sorted(users))}: retire it instead"
    return [Problem("service_id", message, conflict=True)]


async def _bundle_not_on_a_plan(state: Any, view: CatalogView) -> list[Problem]:
    plans = [p.name for p in await view.find("plan") if any(line.bundle_id == state.bundle_id for line in p.lines)]
    if not plans:
        return []
    message = f"bundle {state.name!r} is on plan(s) {', '.join(sorted(plans))}: retire it or take it off first"
    return [Problem("bundle_id", message, conflict=True)]


SAVE_RULES: dict[str, list[SaveRule]] = {
    "assignment": [
        _assignment_refers_to_existing,
        _one_bucket_plan_per_scope,
        _client_has_prerequisites,
        _client_not_cancelled,
    ],
    "plan": [_plan_lines_refer_to_services, plan_rules.plan_is_well_formed, _plan_bundle_lines],
    "service": [service_rules.service_category_exists, _service_requirements],
    "bundle": [_bundle_members_exist],
    "discount": [discount_rules.discount_is_well_formed],
}
DELETE_RULES: dict[str, list[DeleteRule]] = {
    "category": [service_rules.category_not_in_use],
    "service": [
        _service_not_on_a_plan,
        _service_not_required_or_bundled,
        discount_rules.no_discounts_attached("service_id", "service"),
    ],
    "plan": [_plan_not_assigned, discount_rules.no_discounts_attached("plan_id", "plan")],
    "company": [_company_without_assignments, discount_rules.no_discounts_attached("company_id", "client")],
    "bundle": [_bundle_not_on_a_plan],
}


async def problems_saving(state: Any, before: Any | None, view: CatalogView) -> list[Problem]:
    return [p for rule in SAVE_RULES.get(state.entity_type, []) for p in await rule(state, before, view)]


async def problems_deleting(state: Any, view: CatalogView) -> list[Problem]:
    return [p for rule in DELETE_RULES.get(state.entity_type, []) for p in await rule(state, view)]
