"""Proration of fixed fees by days, with the remainder rule that makes the pieces of a cycle sum exactly.

**Where we round, and why.** A fee prorated over days is ``price x days / cycle_days``, which rarely
terminates (100 x 15/31). Pieces of one cycle (a start, a change, a suspension, a cancellation) must add
up to the full price, so proration is a named rounding boundary: amounts are rounded half-up to the
currency's minor units **cumulatively**. Day boundary ``k`` of a cycle of ``N`` days has the cumulative
amount ``C(k) = round_half_up(price x k / N)``; the piece for days ``[a, b)`` is ``C(b) - C(a)``.
Any split of the cycle into pieces telescopes to ``C(N) - C(0) = price`` (for a price already in minor
units) — the remainder of each rounding is carried into the next piece rather than lost, and a piece never
depends on how the rest of the cycle was split. A full cycle is never rounded at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

from shared.client_status import status_on
from shared.contracts.catalog import AssignmentState, ClientStatus, StatusChange
from shared.money import round_half_up
from shared.periods import Period


def cumulative(price: Decimal, k: int, n: int, *, currency: str) -> Decimal:
    if k == n:
        return price
    return round_half_up(price * k / n, currency=currency)


def prorated(price: Decimal, cycle: Period, run: Period, *, currency: str) -> Decimal:
    """The share of ``price`` for the days ``run`` (inside ``cycle``) under the cumulative remainder rule."""
    if run.start < cycle.start or run.end > cycle.end:
        raise ValueError(f"{run} is not inside {cycle}")
    a, b, n = (run.start - cycle.start).days, (run.end - cycle.start).days, cycle.days
    return cumulative(price, b, n, currency=currency) - cumulative(price, a, n, currency=currency)


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
