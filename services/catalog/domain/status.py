"""Client status (active / suspended / cancelled) for a client, one of its assignments or one service.

The history is append-only and published as one ``client_status`` entity per client. Its effects on the
catalog are decided here: cancelling a client or an assignment ends the affected assignments on the
effective date, so they leave the client's active plans; suspension changes no assignment (rating skips
suspended days, `shared.client_status.status_on`); reactivating a cancelled assignment is refused — it
ended for good and a new assignment starts the service again from its own start date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from shared.client_status import status_on
from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    ClientStatus,
    ClientStatusState,
    PlanState,
    StatusChange,
)


class StatusRefused(ValueError):
    """The status change contradicts the client's history; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def recorded(
    current: ClientStatusState | None, change: StatusChange, *, tenant_id: UUID, company_id: UUID
) -> ClientStatusState:
    """The client's status history with ``change`` appended (and its own status, if client-wide)."""
    history = current.history if current is not None else []
    if change.assignment_id is not None and change.status == ClientStatus.ACTIVE:
        latest = [c for c in history if c.assignment_id == change.assignment_id]
        if latest and latest[-1].status == ClientStatus.CANCELLED:
            raise StatusRefused(
                "assignment_id",
                "a cancelled assignment ended for good: assign the plan again from the reactivation date",
            )
    everything = [*history, change]
    own = [c for c in everything if c.assignment_id is None and c.service_id is None]
    status = max(own, key=lambda c: c.effective_date).status if own else ClientStatus.ACTIVE
    return ClientStatusState(tenant_id=tenant_id, company_id=company_id, status=status, history=everything)


@dataclass(frozen=True, slots=True)
class Ending:
    """What cancelling does to one assignment: ``ended`` is its new state, or None when it had not
    started yet on the effective date (it is then deleted: it never ran)."""

    before: AssignmentState
    ended: AssignmentState | None


def endings(change: StatusChange, assignments: Sequence[AssignmentState]) -> list[Ending]:
    """The assignments a cancellation ends on its effective date (none for other statuses or a service)."""
    if change.status != ClientStatus.CANCELLED or change.service_id is not None:
        return []
    day, result = change.effective_date, []
    for a in assignments:
        if change.assignment_id is not None and a.assignment_id != change.assignment_id:
            continue
        if a.end_date is not None and a.end_date <= day:
            continue
        result.append(Ending(a, None if a.start_date >= day else a.model_copy(update={"end_date": day})))
    return result


@dataclass(frozen=True, slots=True)
class ClientService:
    service_id: UUID
    plan_id: UUID
    assignment_id: UUID
    bundle_id: UUID | None
    status: ClientStatus


def client_services(
    day: date,
    *,
    assignments: Sequence[AssignmentState],
    plans: Mapping[UUID, PlanState],
    bundles: Mapping[UUID, BundleState],
    history: Sequence[StatusChange],
) -> list[ClientService]:
    """The services on the client's plans active on ``day``; cancelled ones are off, suspended ones say so."""
    found = []
    for a in assignments:
        plan = plans.get(a.plan_id)
        if plan is None or not (a.start_date <= day and (a.end_date is None or day < a.end_date)):
            continue
        for line in plan.lines:
            bundle = bundles.get(line.bundle_id) if line.bundle_id is not None else None
            members = [line.service_id] if line.service_id is not None else bundle.service_ids if bundle else []
            for sid in members:
                if sid is None:
                    continue
                status = status_on(history, day, assignment_id=a.assignment_id, service_id=sid)
                if status != ClientStatus.CANCELLED:
                    found.append(ClientService(sid, plan.plan_id, a.assignment_id, line.bundle_id, status))
    return found
