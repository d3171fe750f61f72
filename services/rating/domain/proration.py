"""Proration of fixed fees by days: which days of a cycle are billable, and their exact share of the fee.

A fee for part of a cycle is ``price x days / cycle_days``, kept exact (to 60 significant digits when it does
not terminate) on the charge, with its `Proration` (the cycle, the run, the full price). The amount billed is
fixed at the invoice line, after conversion to the invoice currency, by the cumulative remainder rule
(services/invoicing/domain/proration.py; docs/billing-rules.md §7), so the pieces of a cycle on any invoices
sum to the cycle's converted price exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Context, Decimal
from itertools import pairwise
from uuid import UUID

from shared.client_status import status_on
from shared.contracts.catalog import AssignmentState, ClientStatus, StatusChange
from shared.periods import Period

_PRECISE = Context(prec=60)


def exact_share(price: Decimal, cycle: Period, run: Period) -> Decimal:
    """The share of ``price`` for the days ``run`` (inside ``cycle``): ``price x run days / cycle days``, exact."""
    if run.start < cycle.start or run.end > cycle.end:
        raise ValueError(f"{run} is not inside {cycle}")
    if run == cycle:
        return price
    return _PRECISE.divide(price * run.days, Decimal(cycle.days))


def billable_runs(
    cycle: Period,
    assignment: AssignmentState,
    history: Sequence[StatusChange],
    *,
    service_id: UUID | None = None,
) -> list[Period]:
    """The runs of consecutive days of ``cycle`` on which the assignment is in force and neither the
    client, the assignment nor the service is suspended or cancelled (`status_on`)."""

    def billable(day: date) -> bool:
        in_force = assignment.start_date <= day and (assignment.end_date is None or day < assignment.end_date)
        status = status_on(history, day, assignment_id=assignment.assignment_id, service_id=service_id)
        return in_force and status is ClientStatus.ACTIVE

    return runs_where(cycle, billable)


def runs_where(cycle: Period, predicate: Callable[[date], bool]) -> list[Period]:
    runs: list[Period] = []
    start: date | None = None
    day = cycle.start
    while day < cycle.end:
        if predicate(day):
            start = day if start is None else start
        elif start is not None:
            runs.append(Period(start, day))
            start = None
        day += timedelta(days=1)
    if start is not None:
        runs.append(Period(start, cycle.end))
    return runs


def split_at(runs: Sequence[Period], boundaries: Sequence[date]) -> list[Period]:
    """Cut runs at each boundary date inside them (e.g. the dates a line's price changes)."""
    out: list[Period] = []
    for run in runs:
        cuts = sorted({d for d in boundaries if run.start < d < run.end})
        edges = [run.start, *cuts, run.end]
        out.extend(Period(a, b) for a, b in pairwise(edges))
    return out
