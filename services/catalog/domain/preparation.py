"""What the catalog derives before it saves an entity: the saved and published state is the derived one.

- a plan's lines are expanded with the prerequisites of its chosen services (``dependencies.expand``);
- an assignment's term gets its ``renewal_date`` (start + length) when none is given.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from services.catalog.domain.dependencies import EntityReader, expand, load_bundles, load_graph, provided_by
from shared.contracts.catalog import AssignmentState, PlanState


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


async def prepared(state: Any, view: EntityReader) -> Any:
    if isinstance(state, PlanState):
        chosen = [line for line in state.lines if not line.added_as_dependency_of]
        bundles = await load_bundles(view, chosen)
        graph = await load_graph(view, provided_by(chosen, bundles))
        return state.model_copy(update={"lines": expand(state.lines, graph=graph, bundles=bundles)})
    if isinstance(state, AssignmentState) and state.term is not None and state.term.renewal_date is None:
        renewal = add_months(state.start_date, state.term.length_months)
        return state.model_copy(update={"term": state.term.model_copy(update={"renewal_date": renewal})})
    return state
