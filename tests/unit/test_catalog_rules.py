"""Spec for services.catalog.domain.rules: the catalog's consistency rules, against a dict-backed view.

Each rule answers problems that name the field they are about; a delete that the catalog's state forbids is a
conflict (HTTP 409), a save that names something missing is not (HTTP 422).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.catalog.domain.rules import CatalogView, Problem, problems_deleting, problems_saving
from shared.contracts.catalog import (
    AssignmentState,
    CompanyState,
    PlanLine,
    PlanState,
    Role,
    ServiceState,
    ServiceType,
    UserKind,
    UserState,
)

TENANT = UUID("0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b")
JAN_1 = date(2026, 1, 1)


class FakeCatalog:
    """Implements `CatalogView` over a dict of (entity_type, entity_id) to state, as the repository does over
    Postgres: ``find`` matches top-level fields by their JSON value (ids compare as strings)."""

    def __init__(self, *states: Any) -> None:
        self.states: dict[tuple[str, UUID], Any] = {}
        for state in states:
            self.add(state)

    def add(self, state: Any) -> Any:
        self.states[(state.entity_type, _id_of(state))] = state
        return state

    async def get(self, entity_type: str, entity_id: UUID) -> Any | None:
        return self.states.get((entity_type, entity_id))

    async def find(self, entity_type: str, **equals: str) -> list[Any]:
        found = []
        for (kind, _), state in sorted(self.states.items(), key=lambda item: str(item[0][1])):
            doc = state.model_dump(mode="json")
            if kind == entity_type and all(doc.get(name) == value for name, value in equals.items()):
                found.append(state)
        return found


def catalog(*states: Any) -> CatalogView:
    """A view holding exactly ``states`` (typed as the port, so the fake is checked against it)."""
    return FakeCatalog(*states)


def _id_of(state: Any) -> UUID:
    entity_id: UUID = getattr(state, f"{state.entity_type}_id")
    return entity_id


def company(ref: str = "acme") -> CompanyState:
    return CompanyState(
        tenant_id=TENANT,
        company_id=uuid.uuid4(),
        company_ref=ref,
        name="Acme Dental",
        region="GB",
        currency="GBP",
        billing_anchor=JAN_1,
    )


def service(code: str = "managed-device") -> ServiceState:
    return ServiceState(
        tenant_id=TENANT,
        service_id=uuid.uuid4(),
        code=code,
        name="Managed device",
        service_type=ServiceType.USAGE,
        default_rate=Decimal("12.50"),
        currency="GBP",
        unit="device",
    )


def plan(*services: ServiceState, name: str = "Managed devices") -> PlanState:
    return PlanState(
        tenant_id=TENANT,
        plan_id=uuid.uuid4(),
        name=name,
        plan_type="usage-based",
        billing_frequency="monthly",
        currency="GBP",
        lines=[PlanLine(service_id=s.service_id) for s in services],
    )


def assignment(client: CompanyState, on: PlanState, *, start: date = JAN_1, end: date | None = None) -> AssignmentState:
    return AssignmentState(
        tenant_id=TENANT,
        assignment_id=uuid.uuid4(),
        company_id=client.company_id,
        plan_id=on.plan_id,
        start_date=start,
        end_date=end,
    )


def user() -> UserState:
    return UserState(
        tenant_id=TENANT,
        user_id=uuid.uuid4(),
        email="sam@msp.example",
        name="Sam",
        role=Role.TECHNICIAN,
        kind=UserKind.STAFF,
    )


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


class TestSavingAnAssignment:
    async def test_that_names_an_existing_client_and_plan_has_no_problems(self) -> None:
        client, managed = company(), plan()
        view = catalog(client, managed)

        problems = await problems_saving(assignment(client, managed), None, view)

        assert problems == []

    async def test_that_names_a_missing_client_is_a_problem_of_company_id(self) -> None:
        managed = plan()
        view = catalog(managed)

        problems = await problems_saving(assignment(company(), managed), None, view)

        assert fields(problems) == ["company_id"]
        assert "does not exist" in problems[0].message

    async def test_that_names_a_missing_plan_is_a_problem_of_plan_id(self) -> None:
        client = company()
        view = catalog(client)

        problems = await problems_saving(assignment(client, plan()), None, view)

        assert fields(problems) == ["plan_id"]
        assert "does not exist" in problems[0].message

    async def test_that_ends_on_its_start_date_is_a_problem_of_end_date(self) -> None:
        client, managed = company(), plan()
        view = catalog(client, managed)

        problems = await problems_saving(assignment(client, managed, end=JAN_1), None, view)

        assert fields(problems) == ["end_date"]
        assert "after start_date" in problems[0].message

    async def test_that_ends_before_its_start_date_is_a_problem_of_end_date(self) -> None:
        client, managed = company(), plan()
        view = catalog(client, managed)

        problems = await problems_saving(assignment(client, managed, end=date(2025, 12, 31)), None, view)

        assert fields(problems) == ["end_date"]

    async def test_that_ends_the_day_after_it_starts_has_no_problems(self) -> None:
        client, managed = company(), plan()
        view = catalog(client, managed)

        problems = await problems_saving(assignment(client, managed, end=date(2026, 1, 2)), None, view)

        assert problems == []

    async def test_with_everything_wrong_reports_every_problem_at_once(self) -> None:
        view = catalog()

        problems = await problems_saving(assignment(company(), plan(), end=JAN_1), None, view)

        assert fields(problems) == ["company_id", "plan_id", "end_date"]

    async def test_problems_are_not_conflicts(self) -> None:
        problems = await problems_saving(assignment(company(), plan(), end=JAN_1), None, catalog())

        assert [p.conflict for p in problems] == [False, False, False]


class TestSavingAPlan:
    async def test_whose_lines_name_existing_services_has_no_problems(self) -> None:
        device, backup = service("managed-device"), service("backup")
        view = catalog(device, backup)

        problems = await problems_saving(plan(device, backup), None, view)

        assert problems == []

    async def test_without_lines_has_no_problems(self) -> None:
        assert await problems_saving(plan(), None, catalog()) == []

    async def test_whose_line_names_a_missing_service_is_a_problem_of_that_lines_service_id(self) -> None:
        device, missing = service("managed-device"), service("backup")
        view = catalog(device)

        problems = await problems_saving(plan(device, missing), None, view)

        assert fields(problems) == ["lines.1.service_id"]
        assert str(missing.service_id) in problems[0].message
        assert problems[0].conflict is False

    async def test_names_every_line_whose_service_is_missing(self) -> None:
        problems = await problems_saving(plan(service("a"), service("b")), None, catalog())

        assert fields(problems) == ["lines.0.service_id", "lines.1.service_id"]


class TestSavingKindsWithoutRules:
    async def test_a_service_a_client_and_a_user_have_no_problems_even_in_an_empty_catalog(self) -> None:
        view = catalog()

        for state in (service(), company(), user()):
            assert await problems_saving(state, None, view) == []

    async def test_an_update_is_judged_on_its_new_state(self) -> None:
        client, managed = company(), plan()
        before = assignment(client, managed)
        after = before.model_copy(update={"end_date": JAN_1})

        problems = await problems_saving(after, before, catalog(client, managed))

        assert fields(problems) == ["end_date"]


class TestDeletingAService:
    async def test_that_no_plan_uses_has_no_problems(self) -> None:
        device, backup = service("managed-device"), service("backup")
        view = catalog(device, backup, plan(device))

        assert await problems_deleting(backup, view) == []

    async def test_that_is_on_a_plan_is_a_conflict_of_service_id_that_says_to_retire_it(self) -> None:
        device = service("managed-device")
        view = catalog(device, plan(device, name="Gold"), plan(device, name="Bronze"), plan(name="Empty"))

        [problem] = await problems_deleting(device, view)

        assert problem.field == "service_id"
        assert problem.conflict is True
        assert "retire it (active=false)" in problem.message
        assert "'managed-device'" in problem.message
        assert "Bronze, Gold" in problem.message
        assert "Empty" not in problem.message


class TestDeletingAPlan:
    async def test_that_is_not_assigned_has_no_problems(self) -> None:
        client, gold, bronze = company(), plan(name="Gold"), plan(name="Bronze")
        view = catalog(client, gold, bronze, assignment(client, gold))

        assert await problems_deleting(bronze, view) == []

    async def test_that_is_assigned_is_a_conflict_of_plan_id(self) -> None:
        client, gold = company(), plan(name="Gold")
        view = catalog(client, gold, assignment(client, gold))

        [problem] = await problems_deleting(gold, view)

        assert problem.field == "plan_id"
        assert problem.conflict is True
        assert "'Gold'" in problem.message
        assert "assignments" in problem.message


class TestDeletingAClient:
    async def test_without_assignments_has_no_problems(self) -> None:
        acme, globex, gold = company("acme"), company("globex"), plan()
        view = catalog(acme, globex, gold, assignment(acme, gold))

        assert await problems_deleting(globex, view) == []

    async def test_with_assignments_is_a_conflict_of_company_id(self) -> None:
        acme, gold = company("acme"), plan()
        view = catalog(acme, gold, assignment(acme, gold))

        [problem] = await problems_deleting(acme, view)

        assert problem.field == "company_id"
        assert problem.conflict is True
        assert "'acme'" in problem.message
        assert "assignments" in problem.message


class TestDeletingKindsWithoutRules:
    async def test_an_assignment_and_a_user_can_always_be_deleted(self) -> None:
        client, gold = company(), plan()
        held = assignment(client, gold)
        view = catalog(client, gold, held)

        assert await problems_deleting(held, view) == []
        assert await problems_deleting(user(), view) == []
