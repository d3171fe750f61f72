"""What a catalog import says about the discounts it saved pending approval: which, and why (issue 16)."""

from __future__ import annotations

from services.catalog.domain.discount_approval import NO_RULES_YET, gated, why_pending
from shared.contracts.catalog import ApprovalStatus
from tests.unit.test_catalog_discounts import a_discount, rule, rule_set


class TestWhyPending:
    def test_a_discount_over_a_rule_names_the_value_the_threshold_and_the_rule(self) -> None:
        limit = rule("20")
        saved, crossed = gated(a_discount("30"), None, rule_set(limit), version=1)

        pending = why_pending(saved, crossed)

        assert pending is not None
        assert pending.rule == limit
        assert pending.requested_now is True
        assert pending.reason == f"percentage 30 is above the threshold 20 of approval rule {limit.rule_id} (version 1)"

    def test_a_fixed_amount_names_its_currency_and_the_rules(self) -> None:
        limit = rule("500", field="amount", currency="GBP")
        saved, crossed = gated(a_discount("600", discount_type="fixed_amount"), None, rule_set(limit), version=1)

        pending = why_pending(saved, crossed)

        assert pending is not None
        assert pending.reason.startswith("amount 600 GBP is above the threshold 500 GBP of approval rule")

    def test_a_discount_under_every_rule_is_not_pending(self) -> None:
        saved, crossed = gated(a_discount("10"), None, rule_set(rule("20")), version=1)

        assert saved.approval_status is ApprovalStatus.APPROVED
        assert why_pending(saved, crossed) is None

    def test_before_any_rules_arrived_it_says_so_and_where_to_look(self) -> None:
        saved, crossed = gated(a_discount("10"), None, None, version=1)

        pending = why_pending(saved, crossed)

        assert crossed is NO_RULES_YET
        assert pending is not None
        assert pending.rule is None
        assert "no approval rules had reached the catalog" in pending.reason
        assert "GET /v1/readiness" in pending.reason

    def test_one_still_waiting_on_an_earlier_request_names_that_request(self) -> None:
        first, _ = gated(a_discount("30"), None, rule_set(rule("20")), version=1)
        renamed = first.model_copy(update={"name": "Loyalty", "approval_status": ApprovalStatus.APPROVED})
        again, crossed = gated(renamed, first, rule_set(rule("20")), version=2)

        pending = why_pending(again, crossed)

        assert pending is not None
        assert pending.requested_now is False
        assert str(first.approval_request_id) in pending.reason

    def test_a_rejected_discount_is_not_pending(self) -> None:
        rejected = a_discount("30", approval_status="rejected")

        assert why_pending(rejected, None) is None
