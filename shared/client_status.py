"""What a client's status history (``ClientStatusState.history``) says about one day.

Shared because every consumer of catalog events reads the same history the same way: rating skips the
days a client, an assignment or a service is suspended or cancelled (rating issue); the catalog lists a
client's active services.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from shared.contracts.catalog import ClientStatus, StatusChange


def _latest(changes: Sequence[StatusChange], day: date) -> ClientStatus:
    applicable = [(c.effective_date, i, c.status) for i, c in enumerate(changes) if c.effective_date <= day]
    return max(applicable)[2] if applicable else ClientStatus.ACTIVE


def status_on(
    history: Sequence[StatusChange], day: date, *, assignment_id: UUID | None = None, service_id: UUID | None = None
) -> ClientStatus:
    """The status in force on ``day`` for the client, or one of its assignments or services.

    Each scope's latest change effective on or before ``day`` counts (later-recorded wins on the same
    date); the most restrictive of the client's own, the assignment's and the service's applies.
    """
    scopes = [
        [c for c in history if c.assignment_id is None and c.service_id is None],
        [c for c in history if assignment_id is not None and c.assignment_id == assignment_id],
        [c for c in history if service_id is not None and c.service_id == service_id and c.assignment_id is None],
    ]
    found = {_latest(changes, day) for changes in scopes}
    for status in (ClientStatus.CANCELLED, ClientStatus.SUSPENDED):
        if status in found:
            return status
    return ClientStatus.ACTIVE
