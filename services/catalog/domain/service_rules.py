"""Rules of services and their categories: a service's category exists; a category in use stays."""

from __future__ import annotations

from typing import Any

from services.catalog.domain.problems import CatalogView, Problem
from shared.contracts.catalog import CategoryState, ServiceState, ServiceType, SnapshotAggregation


async def service_category_exists(state: ServiceState, _: Any, view: CatalogView) -> list[Problem]:
    problems = []
    if state.category_id is not None and await view.get("category", state.category_id) is None:
        problems.append(Problem("category_id", f"category {state.category_id} does not exist"))
    problems += snapshot_aggregation_problems(state)
    return problems


def snapshot_aggregation_problems(state: ServiceState) -> list[Problem]:
    """Only Usage services report snapshots; the contract fills in ``peak`` for them when not given."""
    if state.service_type != ServiceType.USAGE and state.snapshot_aggregation is not None:
        return [
            Problem(
                "snapshot_aggregation",
                f"only Usage services aggregate snapshots ({', '.join(SnapshotAggregation)}); "
                f"leave it out for a {state.service_type} service",
            )
        ]
    return []


async def category_not_in_use(state: CategoryState, view: CatalogView) -> list[Problem]:
    services = await view.find("service", category_id=str(state.category_id))
    if not services:
        return []
    codes = ", ".join(sorted(s.code for s in services))
    return [
        Problem(
            "category_id",
            f"category {state.name!r} is used by service(s) {codes}: move them to another category first",
            conflict=True,
        )
    ]
