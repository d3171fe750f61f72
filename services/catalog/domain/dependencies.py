"""Service prerequisites: pure rules over a requirement graph (service id -> the services it requires).

A client's services are the lines of its assigned plans, so "subscribing" to a service means a plan line.
When a plan is saved its lines are expanded: every prerequisite (transitively) of a chosen line that the
plan does not already provide is added as its own line, marked ``added_as_dependency_of`` the chosen
services that needed it. Expansion always starts again from the chosen lines, so a line that was only
there for a service that is no longer on the plan goes with it (and one still needed keeps its rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from shared.contracts.catalog import PlanLine

Graph = Mapping[UUID, Sequence[UUID]]


class EntityReader(Protocol):
    async def get(self, entity_type: str, entity_id: UUID) -> Any | None: ...


async def load_graph(view: EntityReader, roots: Iterable[UUID]) -> dict[UUID, list[UUID]]:
    """The requirement graph reachable from ``roots``, read through the catalog (unknown services are left out)."""
    graph: dict[UUID, list[UUID]] = {}
    frontier = list(roots)
    while frontier:
        current = frontier.pop()
        if current in graph:
            continue
        service = await view.get("service", current)
        if service is None:
            continue
        graph[current] = list(service.requires)
        frontier += service.requires
    return graph


async def load_bundles(view: EntityReader, lines: Iterable[PlanLine]) -> dict[UUID, list[UUID]]:
    """The members of the bundles the lines name (unknown bundles are left out)."""
    members: dict[UUID, list[UUID]] = {}
    for line in lines:
        if line.bundle_id is not None and (bundle := await view.get("bundle", line.bundle_id)) is not None:
            members[line.bundle_id] = list(bundle.service_ids)
    return members


def prerequisites(service_id: UUID, graph: Graph) -> list[UUID]:
    """Every service ``service_id`` needs, directly or through others, nearest first (itself excluded)."""
    found: list[UUID] = []
    frontier = list(graph.get(service_id, ()))
    while frontier:
        current = frontier.pop(0)
        if current in found or current == service_id:
            continue
        found.append(current)
        frontier += graph.get(current, ())
    return found


def cycle_through(service_id: UUID, graph: Graph) -> bool:
    """True when ``service_id`` would (transitively) require itself."""
    return any(service_id in graph.get(p, ()) for p in [service_id, *prerequisites(service_id, graph)])


def provided_by(lines: Iterable[PlanLine], bundles: Mapping[UUID, Sequence[UUID]]) -> list[UUID]:
    """The services a set of lines gives the client: service lines and the members of bundle lines."""
    provided: list[UUID] = []
    for line in lines:
        if line.service_id is not None:
            members: Sequence[UUID] = [line.service_id]
        else:
            members = bundles.get(line.bundle_id, ()) if line.bundle_id is not None else ()
        provided += [m for m in members if m not in provided]
    return provided


def expand(lines: Sequence[PlanLine], *, graph: Graph, bundles: Mapping[UUID, Sequence[UUID]]) -> list[PlanLine]:
    """The plan's lines with the prerequisites of its chosen lines added (and stale added ones gone)."""
    chosen = [line for line in lines if not line.added_as_dependency_of]
    earlier = {line.service_id: line for line in lines if line.added_as_dependency_of}
    provided = provided_by(chosen, bundles)
    needed_by: dict[UUID, list[UUID]] = {}
    for service_id in provided:
        for prerequisite in prerequisites(service_id, graph):
            if prerequisite not in provided:
                needed_by.setdefault(prerequisite, []).append(service_id)
    added = [
        (earlier.get(p) or PlanLine(service_id=p)).model_copy(update={"added_as_dependency_of": dependents})
        for p, dependents in needed_by.items()
    ]
    return [*chosen, *added]


def missing_prerequisites(services: Sequence[UUID], graph: Graph) -> dict[UUID, list[UUID]]:
    """For each service whose prerequisites are not all among ``services``: the ones it lacks."""
    missing = {s: [p for p in prerequisites(s, graph) if p not in services] for s in services}
    return {s: m for s, m in missing.items() if m}
