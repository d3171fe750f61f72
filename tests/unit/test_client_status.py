"""Client status: the history, what a day's status is, and what a cancellation ends."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.catalog.domain.rules import problems_saving
from services.catalog.domain.status import StatusRefused, client_services, endings, recorded
from shared.client_status import status_on
from shared.contracts.catalog import AssignmentState, ClientStatus, PlanLine, PlanState, StatusChange
from tests.support.fake_catalog import FakeCatalog

TENANT, COMPANY = uuid.uuid4(), uuid.uuid4()


def change(status: str, effective: str, **scope: Any) -> StatusChange:
    return StatusChange(
        change_id=uuid.uuid4(),
        status=status,
        effective_date=date.fromisoformat(effective),
        reason=f"{status} for a reason",
        recorded_at=datetime(2026, 1, 20, tzinfo=UTC),
        actor="user:x",
        **scope,
    )


def an_assignment(start: str, end: str | None = None, plan_id: uuid.UUID | None = None) -> AssignmentState:
    return AssignmentState(
        tenant_id=TENANT,
        assignment_id=uuid.uuid4(),
        company_id=COMPANY,
        plan_id=plan_id or uuid.uuid4(),
        start_date=date.fromisoformat(start),
        end_date=date.fromisoformat(end) if end else None,
    )


class TestTheHistory:
    def test_keeps_every_change_in_the_order_recorded(self) -> None:
        first = recorded(None, change("suspended", "2026-02-01"), tenant_id=TENANT, company_id=COMPANY)

        second = recorded(first, change("active", "2026-03-01"), tenant_id=TENANT, company_id=COMPANY)

        assert [c.status for c in second.history] == ["suspended", "active"]
        assert second.status == ClientStatus.ACTIVE

    def test_the_clients_own_status_ignores_assignment_and_service_changes(self) -> None:
        state = recorded(
            None, change("cancelled", "2026-02-01", service_id=uuid.uuid4()), tenant_id=TENANT, company_id=COMPANY
        )

        assert state.status == ClientStatus.ACTIVE

    def test_a_cancelled_assignment_cannot_be_reactivated(self) -> None:
        a = uuid.uuid4()
        cancelled = recorded(
            None, change("cancelled", "2026-02-01", assignment_id=a), tenant_id=TENANT, company_id=COMPANY
        )

        with pytest.raises(StatusRefused, match="assign the plan again"):
            recorded(cancelled, change("active", "2026-03-01", assignment_id=a), tenant_id=TENANT, company_id=COMPANY)


class TestStatusOnADay:
    def test_is_active_before_the_effective_date_and_suspended_from_it(self) -> None:
        history = [change("suspended", "2026-02-01")]

        assert status_on(history, date(2026, 1, 31)) == ClientStatus.ACTIVE
        assert status_on(history, date(2026, 2, 1)) == ClientStatus.SUSPENDED

    def test_reactivation_ends_a_suspension(self) -> None:
        history = [change("suspended", "2026-02-01"), change("active", "2026-02-15")]

        assert status_on(history, date(2026, 2, 14)) == ClientStatus.SUSPENDED
        assert status_on(history, date(2026, 2, 15)) == ClientStatus.ACTIVE

    def test_a_service_scoped_change_applies_to_that_service_only(self) -> None:
        service = uuid.uuid4()
        history = [change("cancelled", "2026-02-01", service_id=service)]

        assert status_on(history, date(2026, 3, 1), service_id=service) == ClientStatus.CANCELLED
        assert status_on(history, date(2026, 3, 1), service_id=uuid.uuid4()) == ClientStatus.ACTIVE


class TestCancellation:
    def test_ends_the_clients_running_assignments_on_the_effective_date(self) -> None:
        running, ended = an_assignment("2026-01-01"), an_assignment("2025-01-01", "2025-12-01")

        done = endings(change("cancelled", "2026-03-01"), [running, ended])

        assert [(e.before, e.ended and e.ended.end_date) for e in done] == [(running, date(2026, 3, 1))]

    def test_deletes_an_assignment_that_had_not_started(self) -> None:
        future = an_assignment("2026-06-01")

        assert [e.ended for e in endings(change("cancelled", "2026-03-01"), [future])] == [None]

    def test_of_one_assignment_leaves_the_others_running(self) -> None:
        one, other = an_assignment("2026-01-01"), an_assignment("2026-01-01")

        done = endings(change("cancelled", "2026-03-01", assignment_id=one.assignment_id), [one, other])

        assert [e.before for e in done] == [one]

    @pytest.mark.parametrize("status", ["suspended", "active"])
    def test_only_cancellation_ends_assignments(self, status: str) -> None:
        assert endings(change(status, "2026-03-01"), [an_assignment("2026-01-01")]) == []


class TestClientServices:
    def test_a_cancelled_service_is_off_the_clients_active_plans_from_its_effective_date(self) -> None:
        kept, cancelled = uuid.uuid4(), uuid.uuid4()
        plan = PlanState(
            tenant_id=TENANT,
            plan_id=uuid.uuid4(),
            name="p",
            plan_type="fixed",
            billing_frequency="monthly",
            currency="GBP",
            lines=[PlanLine(service_id=kept), PlanLine(service_id=cancelled)],
        )
        a = an_assignment("2026-01-01", plan_id=plan.plan_id)
        history = [change("cancelled", "2026-02-01", service_id=cancelled)]

        def on(day: str) -> list[uuid.UUID]:
            found = client_services(
                date.fromisoformat(day), assignments=[a], plans={plan.plan_id: plan}, bundles={}, history=history
            )
            return [s.service_id for s in found]

        assert on("2026-01-31") == [kept, cancelled]
        assert on("2026-02-01") == [kept]


class TestAssigningACancelledClient:
    async def test_is_refused_until_it_is_reactivated(self) -> None:
        cancelled = recorded(None, change("cancelled", "2026-02-01"), tenant_id=TENANT, company_id=COMPANY)
        reactivated = recorded(cancelled, change("active", "2026-04-01"), tenant_id=TENANT, company_id=COMPANY)
        catalog = FakeCatalog(cancelled)

        refused = await problems_saving(an_assignment("2026-03-01"), None, catalog)
        catalog.add(reactivated)
        allowed = await problems_saving(an_assignment("2026-04-01"), None, catalog)

        assert ("company_id", True) in [(p.field, p.conflict) for p in refused]
        assert "company_id" not in [p.field for p in allowed if p.conflict]
