"""Bundles, service prerequisites and assignment scope: the catalog's pure rules and plan expansion."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from uuid import UUID

import pytest

from services.catalog.domain.dependencies import cycle_through, expand, missing_prerequisites, prerequisites
from services.catalog.domain.kinds import LOADABLE
from services.catalog.domain.preparation import add_months, prepared
from services.catalog.domain.rules import problems_deleting, problems_saving
from shared.contracts.catalog import AssignmentState, BundleState, CompanyState, PlanLine, PlanState, ServiceState, Term
from tests.support.fake_catalog import FakeCatalog

TENANT = uuid.uuid4()
COMPANY = uuid.uuid4()


def a_service(code: str, *requires: ServiceState) -> ServiceState:
    return ServiceState(
        tenant_id=TENANT,
        service_id=uuid.uuid4(),
        code=code,
        name=code,
        service_type="Fixed",
        default_rate="10",
        currency="GBP",
        unit="device",
        requires=[r.service_id for r in requires],
    )


def a_plan(*lines: PlanLine, plan_type: str = "fixed", currency: str = "GBP") -> PlanState:
    return PlanState(
        tenant_id=TENANT,
        plan_id=uuid.uuid4(),
        name=f"plan-{plan_type}",
        plan_type=plan_type,
        billing_frequency="monthly",
        currency=currency,
        lines=list(lines),
    )


def line(service: ServiceState, **extra: Any) -> PlanLine:
    return PlanLine(service_id=service.service_id, **extra)


def a_bundle(*services: ServiceState, currency: str = "GBP") -> BundleState:
    return BundleState(
        tenant_id=TENANT,
        bundle_id=uuid.uuid4(),
        name="Security pack",
        price="99.00",
        currency=currency,
        service_ids=[s.service_id for s in services],
    )


def an_assignment(plan: PlanState, start: str, end: str | None = None, **extra: Any) -> AssignmentState:
    return AssignmentState(
        tenant_id=TENANT,
        assignment_id=uuid.uuid4(),
        company_id=COMPANY,
        plan_id=plan.plan_id,
        start_date=date.fromisoformat(start),
        end_date=date.fromisoformat(end) if end else None,
        **extra,
    )


def a_company() -> CompanyState:
    return CompanyState(
        tenant_id=TENANT,
        company_id=COMPANY,
        company_ref="acme",
        name="Acme",
        region="GB",
        currency="GBP",
        billing_anchor=date(2026, 1, 1),
    )


def ids(lines: list[PlanLine]) -> list[UUID | None]:
    return [x.service_id for x in lines]


class TestPrerequisites:
    def test_are_found_transitively_nearest_first(self) -> None:
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        assert prerequisites(a, {a: [b], b: [c]}) == [b, c]

    def test_a_cycle_is_detected_through_any_length(self) -> None:
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        assert cycle_through(a, {a: [b], b: [c], c: [a]})
        assert not cycle_through(a, {a: [b], b: [c]})

    def test_missing_ones_are_named_per_service(self) -> None:
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        assert missing_prerequisites([a, c], {a: [b]}) == {a: [b]}


class TestPlanExpansion:
    def test_adds_the_prerequisites_of_a_chosen_service_marked_as_its_dependencies(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)

        lines = expand([line(backup)], graph={backup.service_id: [agent.service_id]}, bundles={})

        assert ids(lines) == [backup.service_id, agent.service_id]
        assert lines[1].added_as_dependency_of == [backup.service_id]

    def test_does_not_add_a_prerequisite_the_plan_already_has(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)

        lines = expand([line(backup), line(agent)], graph={backup.service_id: [agent.service_id]}, bundles={})

        assert ids(lines) == [backup.service_id, agent.service_id]
        assert lines[1].added_as_dependency_of == []

    def test_removing_a_service_removes_the_lines_only_it_needed(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)
        graph = {backup.service_id: [agent.service_id]}
        expanded = expand([line(backup)], graph=graph, bundles={})
        without_backup = [x for x in expanded if x.service_id != backup.service_id]

        assert expand(without_backup, graph=graph, bundles={}) == []

    def test_keeps_an_added_line_and_its_rate_while_another_service_still_needs_it(self) -> None:
        agent = a_service("agent")
        backup, av = a_service("backup", agent), a_service("av", agent)
        graph = {backup.service_id: [agent.service_id], av.service_id: [agent.service_id]}
        expanded = expand([line(backup), line(av)], graph=graph, bundles={})
        repriced = [
            x.model_copy(update={"custom_rate": "1"}) if x.service_id == agent.service_id else x for x in expanded
        ]

        lines = expand([x for x in repriced if x.service_id != backup.service_id], graph=graph, bundles={})

        assert ids(lines) == [av.service_id, agent.service_id]
        assert lines[1].added_as_dependency_of == [av.service_id]
        assert str(lines[1].custom_rate) == "1"

    def test_expands_the_members_of_a_bundle_line(self) -> None:
        agent = a_service("agent")
        backup, av = a_service("backup", agent), a_service("av")
        bundle = a_bundle(backup, av)

        lines = expand(
            [PlanLine(bundle_id=bundle.bundle_id)],
            graph={backup.service_id: [agent.service_id]},
            bundles={bundle.bundle_id: bundle.service_ids},
        )

        assert ids(lines) == [None, agent.service_id]

    async def test_a_saved_plan_is_expanded_through_the_catalog(self) -> None:
        agent = a_service("agent")
        patch = a_service("patching", agent)
        backup = a_service("backup", patch)
        catalog = FakeCatalog(agent, patch, backup)

        plan = await prepared(a_plan(line(backup)), catalog)

        assert ids(plan.lines) == [backup.service_id, patch.service_id, agent.service_id]


class TestTerms:
    @pytest.mark.parametrize(
        ("start", "months", "renewal"),
        [("2026-01-01", 12, "2027-01-01"), ("2026-01-31", 1, "2026-02-28"), ("2027-11-30", 3, "2028-02-29")],
    )
    def test_a_renewal_date_is_start_plus_the_term_clamped_to_month_end(
        self, start: str, months: int, renewal: str
    ) -> None:
        assert add_months(date.fromisoformat(start), months) == date.fromisoformat(renewal)

    async def test_a_given_renewal_date_is_kept(self) -> None:
        plan = a_plan()
        term = Term(length_months=12, renewal_date=date(2026, 6, 1))

        assignment = await prepared(an_assignment(plan, "2026-01-01", term=term), FakeCatalog())

        assert assignment.term.renewal_date == date(2026, 6, 1)


class TestServiceRequirements:
    async def test_must_exist(self) -> None:
        ghost = a_service("ghost")
        backup = a_service("backup", ghost)

        problems = await problems_saving(backup, None, FakeCatalog())

        assert [p.field for p in problems] == ["requires.0"]

    async def test_cannot_name_the_service_itself(self) -> None:
        backup = a_service("backup")
        backup = backup.model_copy(update={"requires": [backup.service_id]})

        problems = await problems_saving(backup, None, FakeCatalog(backup))

        assert [p.field for p in problems] == ["requires"]

    async def test_cannot_form_a_cycle(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)
        agent_needing_backup = agent.model_copy(update={"requires": [backup.service_id]})

        problems = await problems_saving(agent_needing_backup, agent, FakeCatalog(agent, backup))

        assert "cycle" in problems[0].message

    async def test_a_required_service_cannot_be_deleted(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)

        problems = await problems_deleting(agent, FakeCatalog(agent, backup))

        assert problems[0].conflict
        assert "required by or bundled in backup" in problems[0].message


class TestBundles:
    async def test_members_must_exist(self) -> None:
        av, ghost = a_service("av"), a_service("ghost")

        problems = await problems_saving(a_bundle(av, ghost), None, FakeCatalog(av))

        assert [p.field for p in problems] == ["service_ids.1"]

    async def test_a_member_is_listed_once(self) -> None:
        av = a_service("av")

        problems = await problems_saving(a_bundle(av, av), None, FakeCatalog(av))

        assert [p.field for p in problems] == ["service_ids"]

    def test_needs_at_least_two_services(self) -> None:
        with pytest.raises(ValueError, match="at least 2"):
            a_bundle(a_service("av"))

    def test_a_plan_line_names_a_service_or_a_bundle_not_both(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            PlanLine(service_id=uuid.uuid4(), bundle_id=uuid.uuid4())

    async def test_a_plan_cannot_also_sell_a_bundled_service_on_its_own(self) -> None:
        av, edr = a_service("av"), a_service("edr")
        bundle = a_bundle(av, edr)
        plan = a_plan(PlanLine(bundle_id=bundle.bundle_id), line(av))

        problems = await problems_saving(plan, None, FakeCatalog(av, edr, bundle))

        assert [p.field for p in problems] == ["lines.1.service_id"]

    async def test_a_bundle_on_a_plan_cannot_be_deleted(self) -> None:
        av, edr = a_service("av"), a_service("edr")
        bundle = a_bundle(av, edr)
        plan = a_plan(PlanLine(bundle_id=bundle.bundle_id))

        problems = await problems_deleting(bundle, FakeCatalog(av, edr, bundle, plan))

        assert problems[0].conflict


class TestBucketAssignments:
    async def test_overlapping_bucket_plans_for_the_same_scope_are_refused(self) -> None:
        first, second = a_plan(plan_type="bucket"), a_plan(plan_type="bucket")
        catalog = FakeCatalog(a_company(), first, second, an_assignment(first, "2026-01-01", "2026-07-01"))

        problems = await problems_saving(an_assignment(second, "2026-06-01"), None, catalog)

        assert [(p.field, p.conflict) for p in problems] == [("start_date", True)]
        assert "overlaps bucket plan" in problems[0].message

    async def test_a_bucket_plan_may_start_when_the_other_ends(self) -> None:
        first, second = a_plan(plan_type="bucket"), a_plan(plan_type="bucket")
        catalog = FakeCatalog(a_company(), first, second, an_assignment(first, "2026-01-01", "2026-07-01"))

        assert await problems_saving(an_assignment(second, "2026-07-01"), None, catalog) == []

    async def test_bucket_plans_for_different_categories_may_overlap(self) -> None:
        first, second = a_plan(plan_type="bucket"), a_plan(plan_type="bucket")
        catalog = FakeCatalog(a_company(), first, second, an_assignment(first, "2026-01-01", service_category="help"))

        new = an_assignment(second, "2026-03-01", service_category="projects")

        assert await problems_saving(new, None, catalog) == []

    async def test_a_client_may_have_several_other_plans_at_once(self) -> None:
        bucket, fixed = a_plan(plan_type="bucket"), a_plan()
        catalog = FakeCatalog(a_company(), bucket, fixed, an_assignment(bucket, "2026-01-01"))

        assert await problems_saving(an_assignment(fixed, "2026-01-01"), None, catalog) == []


class TestSubscribingNeedsPrerequisites:
    async def test_an_assignment_is_refused_when_the_clients_plans_lack_a_prerequisite(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)
        stale = a_plan(line(backup))  # saved before backup required agent

        problems = await problems_saving(
            an_assignment(stale, "2026-01-01"), None, FakeCatalog(a_company(), agent, backup, stale)
        )

        assert [p.field for p in problems] == ["plan_id"]
        assert "'backup' requires 'agent'" in problems[0].message

    async def test_another_active_plan_of_the_client_can_provide_it(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)
        stale, base = a_plan(line(backup)), a_plan(line(agent))
        catalog = FakeCatalog(a_company(), agent, backup, stale, base, an_assignment(base, "2026-01-01"))

        assert await problems_saving(an_assignment(stale, "2026-02-01"), None, catalog) == []

    async def test_an_existing_assignment_of_that_plan_can_still_be_ended(self) -> None:
        agent = a_service("agent")
        backup = a_service("backup", agent)
        stale = a_plan(line(backup))
        running = an_assignment(stale, "2026-01-01")
        catalog = FakeCatalog(a_company(), agent, backup, stale, running)

        ended = running.model_copy(update={"end_date": date(2026, 3, 1)})

        assert await problems_saving(ended, running, catalog) == []


class TestTheLoadingOrder:
    def test_follows_dependencies_services_bundles_plans_assignments(self) -> None:
        order = [k.collection for k in LOADABLE]

        assert order.index("services") < order.index("bundles") < order.index("plans") < order.index("assignments")

    def test_client_statuses_are_not_loadable(self) -> None:
        assert "client-statuses" not in [k.collection for k in LOADABLE]
