"""When more than one of a client's plans could price a service, which one does."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.rating.domain.pricing import PlanCandidate, rank_candidates
from shared.contracts.catalog import AssignmentState, PlanState, ServiceState

TENANT, CLIENT = uuid.uuid4(), uuid.uuid4()
CATEGORY = uuid.uuid4()
SERVICE = ServiceState(
    tenant_id=TENANT,
    service_id=uuid.uuid4(),
    code="managed-device",
    name="Managed device",
    service_type="Usage",
    default_rate="12.50",
    currency="GBP",
    unit="device",
    category_id=CATEGORY,
)


def candidate(name: str, *, start: str = "2026-01-01", scope: str | None = None, custom: bool = False) -> PlanCandidate:
    plan = PlanState(
        tenant_id=TENANT,
        plan_id=uuid.uuid4(),
        name=name,
        plan_type="usage-based",
        billing_frequency="monthly",
        currency="GBP",
        lines=[{"service_id": str(SERVICE.service_id)}],
        is_custom=custom,
        company_id=CLIENT if custom else None,
    )
    assignment = AssignmentState(
        tenant_id=TENANT,
        assignment_id=uuid.uuid4(),
        company_id=CLIENT,
        plan_id=plan.plan_id,
        start_date=date.fromisoformat(start),
        service_category=scope,
    )
    return PlanCandidate(assignment, plan)


class TestPlanPrecedence:
    @pytest.mark.parametrize(
        ("plans", "winner"),
        [
            ([candidate("template"), candidate("scoped", scope=str(CATEGORY))], "scoped"),
            ([candidate("template"), candidate("custom", custom=True)], "custom"),
            ([candidate("older", start="2026-01-01"), candidate("newer", start="2026-03-01")], "newer"),
            ([candidate("custom", custom=True), candidate("scoped template", scope=str(CATEGORY))], "scoped template"),
        ],
    )
    def test_the_best_candidate_prices_the_service(self, plans: list[PlanCandidate], winner: str) -> None:
        assert rank_candidates(plans, SERVICE)[0].plan.name == winner

    def test_an_assignment_scoped_to_another_category_never_prices_the_service(self) -> None:
        other = candidate("other category", scope=str(uuid.uuid4()))

        assert rank_candidates([other], SERVICE) == []

    def test_ties_are_broken_the_same_way_every_time(self) -> None:
        a, b = candidate("a"), candidate("b")

        assert rank_candidates([a, b], SERVICE) == rank_candidates([b, a], SERVICE)
