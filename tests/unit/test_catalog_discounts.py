"""Discounts: what is in effect on a day (with the client-over-default precedence), what the catalog checks
on a discount, and when a discount needs managerial approval (seed 000: "Discounts and Promotions" and
"Approval Workflows")."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from services.catalog.domain.discount_approval import (
    NO_RULES_YET,
    approval_request,
    crossed_rule,
    decided,
    gated,
)
from services.catalog.domain.rules import problems_deleting, problems_saving
from shared.contracts.approvals import ApprovalItemType, ApprovalRule, ApprovalRuleSet
from shared.contracts.catalog import (
    ApprovalStatus,
    CompanyState,
    DiscountState,
    PlanState,
    ServiceState,
    applicable_discounts,
    discount_in_effect,
)
from tests.support.fake_catalog import FakeCatalog

TENANT = uuid.uuid4()
CLIENT, OTHER_CLIENT = uuid.uuid4(), uuid.uuid4()
PLAN, OTHER_PLAN = uuid.uuid4(), uuid.uuid4()
SERVICE = uuid.uuid4()
AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def a_discount(value: str = "10", *, discount_type: str = "percentage", **extra: Any) -> DiscountState:
    fields: dict[str, Any] = {"plan_id": PLAN, "approval_status": "approved", "name": f"{value} off"} | extra
    if discount_type == "fixed_amount":
        fields.setdefault("currency", "GBP")
    return DiscountState(
        tenant_id=TENANT,
        discount_id=uuid.uuid4(),
        discount_type=discount_type,
        value=value,
        **fields,
    )


def rule(threshold: str, *, field: str = "percentage", active: bool = True, **extra: Any) -> ApprovalRule:
    return ApprovalRule(
        rule_id=uuid.uuid4(),
        tenant_id=TENANT,
        item_type=extra.pop("item_type", "discount"),
        threshold_field=field,
        threshold=threshold,
        steps=[{"step": 1, "roles": ["billing_manager"]}],
        active=active,
        version=1,
        updated_at=AT,
        **extra,
    )


def rule_set(*rules: ApprovalRule) -> ApprovalRuleSet:
    return ApprovalRuleSet(tenant_id=TENANT, rules=list(rules), version=1, occurred_at=AT)


def applies(discounts: list[DiscountState], day: str, *, company_id: UUID = CLIENT) -> list[DiscountState]:
    return applicable_discounts(
        discounts, company_id=company_id, plan_id=PLAN, service_id=SERVICE, day=date.fromisoformat(day)
    )


# -- what is in effect --------------------------------------------------------------------------------


class TestInEffect:
    @pytest.mark.parametrize(
        ("valid_from", "valid_to", "day", "expected"),
        [
            (None, None, "2026-06-01", True),
            ("2026-01-01", "2026-04-01", "2025-12-31", False),  # before the promotion
            ("2026-01-01", "2026-04-01", "2026-01-01", True),  # its first day
            ("2026-01-01", "2026-04-01", "2026-03-31", True),  # its last day
            ("2026-01-01", "2026-04-01", "2026-04-01", False),  # valid_to is exclusive
            ("2026-01-01", None, "2030-01-01", True),  # open-ended
            (None, "2026-04-01", "2020-01-01", True),  # from the beginning
        ],
    )
    def test_time_bound_discounts_apply_only_within_their_valid_date_range(
        self, valid_from: str | None, valid_to: str | None, day: str, expected: bool
    ) -> None:
        discount = a_discount(valid_from=valid_from, valid_to=valid_to)

        assert discount_in_effect(discount, date.fromisoformat(day)) is expected
        assert (applies([discount], day) == [discount]) is expected

    @pytest.mark.parametrize(
        ("status", "active", "expected"),
        [("approved", True, True), ("pending", True, False), ("rejected", True, False), ("approved", False, False)],
    )
    def test_only_approved_active_discounts_are_in_effect(self, status: str, active: bool, expected: bool) -> None:
        discount = a_discount(approval_status=status, active=active)

        assert (applies([discount], "2026-02-01") == [discount]) is expected


class TestPrecedence:
    @pytest.mark.parametrize(
        ("attached", "applies_to_client"),
        [
            ({"plan_id": PLAN}, True),  # the plan's default
            ({"plan_id": OTHER_PLAN}, False),  # another plan's
            ({"plan_id": None, "service_id": SERVICE}, True),  # the service's default
            ({"plan_id": None, "company_id": CLIENT}, True),  # client-wide
            ({"plan_id": None, "company_id": OTHER_CLIENT}, False),  # another client's
            ({"plan_id": PLAN, "company_id": CLIENT}, True),  # this client on this plan
            ({"plan_id": OTHER_PLAN, "company_id": CLIENT}, False),  # this client on another plan
        ],
    )
    def test_a_discount_applies_to_what_it_is_attached_to(
        self, attached: dict[str, Any], applies_to_client: bool
    ) -> None:
        discount = a_discount(**attached)

        assert (applies([discount], "2026-02-01") == [discount]) is applies_to_client

    def test_discounts_for_a_specific_client_override_the_default_plan_discount(self) -> None:
        plan_default = a_discount("10", plan_id=PLAN)
        client_on_plan = a_discount("25", plan_id=PLAN, company_id=CLIENT)

        assert applies([plan_default, client_on_plan], "2026-02-01") == [client_on_plan]
        assert applies([plan_default, client_on_plan], "2026-02-01", company_id=OTHER_CLIENT) == [plan_default]

    def test_a_client_wide_discount_also_overrides_the_plan_and_service_defaults(self) -> None:
        plan_default, service_default = a_discount("10"), a_discount("5", plan_id=None, service_id=SERVICE)
        client_wide = a_discount("15", plan_id=None, company_id=CLIENT)

        assert applies([plan_default, service_default, client_wide], "2026-02-01") == [client_wide]

    def test_the_default_applies_again_outside_the_client_discounts_dates(self) -> None:
        plan_default = a_discount("10")
        promotion = a_discount("50", company_id=CLIENT, valid_from="2026-01-01", valid_to="2026-02-01")

        assert applies([plan_default, promotion], "2026-01-15") == [promotion]
        assert applies([plan_default, promotion], "2026-02-01") == [plan_default]

    def test_a_pending_client_discount_does_not_displace_the_default(self) -> None:
        plan_default = a_discount("10")
        pending = a_discount("60", company_id=CLIENT, approval_status="pending")

        assert applies([plan_default, pending], "2026-02-01") == [plan_default]

    def test_every_discount_of_the_winning_level_applies_percentages_first(self) -> None:
        fixed = a_discount("20.00", discount_type="fixed_amount")
        percentage = a_discount("10")

        assert applies([fixed, percentage], "2026-02-01") == [percentage, fixed]


# -- what the catalog checks ---------------------------------------------------------------------------


def the_catalog() -> FakeCatalog:
    company = CompanyState(
        tenant_id=TENANT,
        company_id=CLIENT,
        company_ref="acme",
        name="Acme",
        region="GB",
        currency="GBP",
        billing_anchor="2026-01-01",
    )
    plan = PlanState(
        tenant_id=TENANT,
        plan_id=PLAN,
        name="Managed",
        plan_type="fixed",
        billing_frequency="monthly",
        currency="GBP",
        lines=[],
    )
    service = ServiceState(
        tenant_id=TENANT,
        service_id=SERVICE,
        code="managed-device",
        name="Managed device",
        service_type="Fixed",
        default_rate="10",
        currency="GBP",
        unit="device",
    )
    return FakeCatalog(company, plan, service)


async def problems(discount: DiscountState) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in await problems_saving(discount, None, the_catalog())]


class TestDiscountRules:
    @pytest.mark.parametrize(
        ("value", "discount_type", "extra"),
        [
            ("10", "percentage", {}),
            ("100", "percentage", {}),
            ("0.5", "percentage", {}),
            ("25.00", "fixed_amount", {}),
            ("25.00", "fixed_amount", {"plan_id": None, "service_id": SERVICE}),
            ("10", "percentage", {"plan_id": None, "company_id": CLIENT}),
            ("10", "percentage", {"company_id": CLIENT}),
            ("10", "percentage", {"valid_from": "2026-01-01", "valid_to": "2026-01-02"}),
        ],
    )
    async def test_accepts_well_formed_discounts(self, value: str, discount_type: str, extra: dict[str, Any]) -> None:
        assert await problems(a_discount(value, discount_type=discount_type, **extra)) == []

    @pytest.mark.parametrize(
        ("value", "discount_type", "extra", "field"),
        [
            ("0", "percentage", {}, "value"),
            ("100.01", "percentage", {}, "value"),
            ("-5", "percentage", {}, "value"),
            ("0", "fixed_amount", {}, "value"),
            ("10", "percentage", {"currency": "GBP"}, "currency"),
            ("10", "fixed_amount", {"currency": None}, "currency"),
            ("10", "fixed_amount", {"currency": "USD"}, "currency"),  # the plan is priced in GBP
            ("10", "percentage", {"valid_from": "2026-02-01", "valid_to": "2026-02-01"}, "valid_to"),
            ("10", "percentage", {"plan_id": None}, "plan_id"),
            ("10", "percentage", {"service_id": SERVICE}, "service_id"),
            ("10", "percentage", {"plan_id": uuid.uuid4()}, "plan_id"),
            ("10", "percentage", {"plan_id": None, "company_id": uuid.uuid4()}, "company_id"),
        ],
    )
    async def test_refuses_naming_the_field(
        self, value: str, discount_type: str, extra: dict[str, Any], field: str
    ) -> None:
        found = await problems(a_discount(value, discount_type=discount_type, **extra))

        assert [f for f, _ in found] == [field], found

    async def test_a_plan_with_a_discount_is_not_deleted(self) -> None:
        catalog = the_catalog()
        catalog.add(a_discount(name="Loyalty"))

        found = await problems_deleting(await catalog.get("plan", PLAN), catalog)

        assert [(p.field, p.conflict) for p in found] == [("plan_id", True)]


# -- approval -------------------------------------------------------------------------------------------


class TestApprovalRules:
    @pytest.mark.parametrize(
        ("value", "discount_type", "rules", "crossed"),
        [
            ("50", "percentage", [rule("20")], True),  # over the threshold: a manager decides
            ("20", "percentage", [rule("20")], False),  # strictly greater is needed
            ("5", "percentage", [rule("20")], False),
            ("50", "percentage", [rule("20", active=False)], False),  # inactive rules hold nothing
            ("50", "percentage", [rule("20", item_type="time_entry")], False),  # other items' rules
            ("50", "percentage", [rule("20", field="amount")], False),  # a money rule ignores percentages
            ("600.00", "fixed_amount", [rule("500", field="amount")], True),
            ("600.00", "fixed_amount", [rule("500", field="amount", currency="GBP")], True),
            ("600.00", "fixed_amount", [rule("500", field="amount", currency="USD")], False),  # other currency
            ("600.00", "fixed_amount", [rule("20")], False),  # a percentage rule ignores amounts
            ("50", "percentage", [], False),
        ],
    )
    def test_discounts_over_a_certain_value_require_managerial_approval(
        self, value: str, discount_type: str, rules: list[ApprovalRule], crossed: bool
    ) -> None:
        discount = a_discount(value, discount_type=discount_type)

        assert (crossed_rule(discount, rule_set(*rules)) is not None) is crossed
        state, to_request = gated(discount, None, rule_set(*rules), version=1)
        assert state.approval_status is (ApprovalStatus.PENDING if crossed else ApprovalStatus.APPROVED)
        assert (to_request is not None) is crossed
        assert (state.approval_request_id is not None) is crossed

    def test_before_any_rules_are_received_a_discount_waits_and_approvals_is_asked(self) -> None:
        state, to_request = gated(a_discount("5", approval_status="approved"), None, None, version=1)

        assert (state.approval_status, to_request) == (ApprovalStatus.PENDING, NO_RULES_YET)
        request = approval_request(state, NO_RULES_YET, requested_by=None, company_ref=None, at=AT)
        assert request.request_id == state.approval_request_id
        assert request.details["rules_known"] is False

    def test_a_value_sent_by_the_client_is_overridden(self) -> None:
        sent = a_discount("50", approval_status="approved")

        state, _ = gated(sent, None, rule_set(rule("20")), version=1)

        assert state.approval_status is ApprovalStatus.PENDING

    def test_the_request_id_is_deterministic_per_discount_version(self) -> None:
        discount, rules = a_discount("50"), rule_set(rule("20"))

        first, _ = gated(discount, None, rules, version=1)
        again, _ = gated(discount, None, rules, version=1)
        later, _ = gated(discount, None, rules, version=2)

        assert first.approval_request_id == again.approval_request_id != later.approval_request_id

    @pytest.mark.parametrize("status", ["pending", "approved", "rejected"])
    def test_saving_the_same_terms_again_keeps_the_status(self, status: str) -> None:
        before, _ = gated(a_discount("50"), None, rule_set(rule("20")), version=1)
        before = before.model_copy(update={"approval_status": ApprovalStatus(status)})

        renamed, to_request = gated(
            before.model_copy(update={"name": "Renamed", "valid_to": date(2027, 1, 1)}),
            before,
            rule_set(rule("20")),
            version=2,
        )

        assert renamed.approval_status is ApprovalStatus(status)
        assert renamed.approval_request_id == before.approval_request_id
        assert to_request is None

    @pytest.mark.parametrize(("new_value", "expected"), [("60", "pending"), ("5", "approved")])
    def test_editing_the_value_evaluates_again(self, new_value: str, expected: str) -> None:
        approved, _ = gated(a_discount("50"), None, rule_set(rule("20")), version=1)
        approved = approved.model_copy(update={"approval_status": ApprovalStatus.APPROVED})

        edited, to_request = gated(
            approved.model_copy(update={"value": Decimal(new_value)}), approved, rule_set(rule("20")), version=2
        )

        assert edited.approval_status is ApprovalStatus(expected)
        assert (to_request is not None) is (expected == "pending")
        if expected == "pending":
            assert edited.approval_request_id not in (None, approved.approval_request_id)

    def test_the_request_names_the_discount_trigger_and_requester(self) -> None:
        rules = rule_set(rule("20"))
        pending, crossed = gated(a_discount("50", company_id=CLIENT), None, rules, version=3)
        assert crossed is not None

        request = approval_request(pending, crossed, requested_by="u-1", company_ref="acme", at=AT)

        assert request.request_id == pending.approval_request_id
        assert (request.item_type, request.item_id) == (ApprovalItemType.DISCOUNT, str(pending.discount_id))
        assert (request.trigger_field, request.trigger_value, request.currency) == ("percentage", Decimal(50), None)
        assert (request.requesting_service, request.requested_by, request.company_ref) == ("catalog", "u-1", "acme")
        assert "50%" in request.summary
        assert request.key() == f"{TENANT}:discount:{pending.discount_id}"


class TestDecisions:
    @pytest.mark.parametrize(("approved", "status"), [(True, "approved"), (False, "rejected")])
    def test_a_decision_on_the_pending_request_settles_the_status(self, approved: bool, status: str) -> None:
        pending, _ = gated(a_discount("50"), None, rule_set(rule("20")), version=1)
        assert pending.approval_request_id is not None

        after = decided(pending, request_id=pending.approval_request_id, approved=approved)

        assert after is not None
        assert after.approval_status is ApprovalStatus(status)

    def test_a_decision_on_an_earlier_request_changes_nothing(self) -> None:
        pending, _ = gated(a_discount("50"), None, rule_set(rule("20")), version=2)

        assert decided(pending, request_id=uuid.uuid4(), approved=True) is None

    def test_a_settled_discount_is_not_decided_again(self) -> None:
        pending, _ = gated(a_discount("50"), None, rule_set(rule("20")), version=1)
        assert pending.approval_request_id is not None
        rejected = decided(pending, request_id=pending.approval_request_id, approved=False)
        assert rejected is not None

        assert decided(rejected, request_id=pending.approval_request_id, approved=True) is None
