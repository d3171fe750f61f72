"""The approval workflow and its rules, without I/O (services/approvals/domain)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.approvals.domain import rules as rule_book
from services.approvals.domain.workflow import (
    SYSTEM_RULES,
    CommentRequired,
    Decider,
    NotAllowed,
    NotPending,
    Status,
    Workflow,
    WrongStep,
    approved_without_rule,
    decide,
    open_workflow,
    time_out,
)
from shared.contracts.approvals import (
    SYSTEM_TIMEOUT,
    ApprovalItemType,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
    PendingReason,
)

TENANT = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
T0 = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
MANAGER = Decider(user_id=uuid.uuid4(), role="billing_manager")
SECOND_MANAGER = Decider(user_id=uuid.uuid4(), role="billing_manager")
ADMIN = Decider(user_id=uuid.uuid4(), role="admin")
APPROVER = Decider(user_id=uuid.uuid4(), role="approver")


def request(value: str = "9.5", **changes: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "request_id": uuid.uuid4(),
        "tenant_id": TENANT,
        "item_type": "time_entry",
        "item_id": "cw-time-1",
        "requesting_service": "metering",
        "requested_by": "tech.jane",
        "trigger_field": "hours",
        "trigger_value": value,
        "summary": f"{value} h by tech.jane",
        "requested_at": T0,
    }
    return ApprovalRequest.model_validate(fields | changes)


def rule(
    *steps: ApprovalStep, threshold: str = "8", item_type: str = "time_entry", field: str = "hours", **changes: Any
) -> ApprovalRule:
    fields: dict[str, Any] = {
        "rule_id": uuid.uuid4(),
        "tenant_id": TENANT,
        "item_type": item_type,
        "threshold_field": field,
        "threshold": threshold,
        "steps": list(steps) or [ApprovalStep(step=1, roles=["billing_manager"])],
        "version": 1,
        "updated_at": T0,
    }
    return ApprovalRule.model_validate(fields | changes)


def step(n: int, *roles: str, **changes: Any) -> ApprovalStep:
    return ApprovalStep.model_validate({"step": n, "roles": list(roles)} | changes)


def opened(r: ApprovalRule, req: ApprovalRequest | None = None, requester: uuid.UUID | None = None) -> Workflow:
    workflow, _ = open_workflow(req or request(), r, requester_user_id=requester, billing_now=T0)
    return workflow


def approve(w: Workflow, who: Decider, **kw: Any) -> Any:
    return decide(
        w,
        who,
        outcome=ApprovalOutcome.APPROVED,
        comment=kw.pop("comment", None),
        step=kw.pop("step", None),
        at=T0,
        billing_now=kw.pop("billing_now", T0),
    )


class TestWhichRuleHoldsARequest:
    def test_a_value_strictly_above_the_threshold_is_held(self) -> None:
        eight = rule()
        assert rule_book.governing_rule([eight], request("8.01")) == eight
        assert rule_book.governing_rule([eight], request("8")) is None

    def test_the_highest_crossed_threshold_governs(self) -> None:
        over_8 = rule(threshold="8")
        over_12 = rule(step(1, "billing_manager"), step(2, "admin"), threshold="12")
        assert rule_book.governing_rule([over_8, over_12], request("13")) == over_12
        assert rule_book.governing_rule([over_8, over_12], request("10")) == over_8

    def test_inactive_rules_other_fields_and_other_currencies_hold_nothing(self) -> None:
        assert rule_book.governing_rule([rule(active=False)], request("20")) is None
        assert rule_book.governing_rule([rule(field="quantity", item_type="usage_report")], request("20")) is None
        credit = rule(item_type="credit", field="amount", threshold="500", currency="USD")
        in_eur = request("900", item_type="credit", trigger_field="amount", currency="EUR")
        assert rule_book.governing_rule([credit], in_eur) is None
        assert rule_book.governing_rule([credit], in_eur.model_copy(update={"currency": "USD"})) == credit


class TestRuleValidation:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"field": "amount"}, "threshold_field"),
            ({"currency": "USD"}, "currency"),
            ({"steps": [step(1, "technician")]}, "steps.0.roles"),
            ({"steps": [step(1, "billing_manager", on_timeout="approve")]}, "steps.0.timeout_hours"),
            (
                {
                    "steps": [
                        step(1, "billing_manager", timeout_hours=4, on_timeout="escalate", escalate_to_role="viewer")
                    ]
                },
                "steps.0.escalate_to_role",
            ),
        ],
    )
    def test_names_the_field_that_is_wrong(self, changes: dict[str, Any], field: str) -> None:
        steps = changes.pop("steps", [])
        found = rule_book.problems(rule(*steps, **changes))
        assert [p.field for p in found] == [field]

    def test_every_default_rule_is_valid_and_ids_are_stable(self) -> None:
        defaults = rule_book.default_rules(TENANT, at=T0)
        assert all(rule_book.problems(r) == [] for r in defaults)
        assert [r.rule_id for r in defaults] == [r.rule_id for r in rule_book.default_rules(TENANT, at=T0)]

    def test_defaults_hold_long_time_entries_and_send_big_discounts_to_a_manager(self) -> None:
        defaults = rule_book.default_rules(TENANT, at=T0)
        long_entry = rule_book.governing_rule(defaults, request("8.5"))
        assert long_entry is not None
        assert long_entry.steps[0].roles == ["billing_manager", "approver"]
        discount = request("25", item_type="discount", trigger_field="percentage")
        found = rule_book.governing_rule(defaults, discount)
        assert found is not None
        assert found.steps[0].roles == ["billing_manager"]
        assert rule_book.governing_rule(defaults, request("8")) is None


class TestDeciding:
    def test_one_step_approved_is_final(self) -> None:
        t = approve(opened(rule()), MANAGER, comment="ok")
        assert t.workflow.status is Status.APPROVED
        assert t.final is not None
        assert t.final.outcome is ApprovalOutcome.APPROVED
        assert t.final.decided_by == MANAGER.actor
        assert t.pending is None

    def test_two_steps_need_two_people_in_order(self) -> None:
        two = opened(rule(step(1, "billing_manager"), step(2, "admin")))
        first = approve(two, MANAGER)
        assert first.final is None
        assert first.pending is not None
        assert first.pending.reason is PendingReason.NEXT_STEP
        assert first.workflow.current_step == 2
        assert first.workflow.roles == ("admin",)
        with pytest.raises(NotAllowed, match="role 'billing_manager' may not decide step 2"):
            approve(first.workflow, SECOND_MANAGER)
        last = approve(first.workflow, ADMIN)
        assert last.final is not None
        assert last.final.step == 2
        assert last.workflow.status is Status.APPROVED

    def test_the_same_person_cannot_decide_two_steps(self) -> None:
        both = opened(rule(step(1, "billing_manager", "admin"), step(2, "admin")))
        first = approve(both, ADMIN)
        with pytest.raises(NotAllowed, match="earlier step"):
            approve(first.workflow, ADMIN)

    def test_a_rejection_at_any_step_is_final_and_needs_a_comment(self) -> None:
        two = opened(rule(step(1, "billing_manager"), step(2, "admin")))
        with pytest.raises(CommentRequired):
            decide(two, MANAGER, outcome=ApprovalOutcome.REJECTED, comment=" ", step=None, at=T0, billing_now=T0)
        t = decide(two, MANAGER, outcome=ApprovalOutcome.REJECTED, comment="too long", step=1, at=T0, billing_now=T0)
        assert t.final is not None
        assert t.final.outcome is ApprovalOutcome.REJECTED
        assert t.final.reason == "too long"

    def test_a_role_the_step_does_not_name_is_refused_with_the_roles_it_needs(self) -> None:
        with pytest.raises(NotAllowed, match=r"role 'approver' may not decide step 1.*\['billing_manager'\]"):
            approve(opened(rule()), APPROVER)

    @pytest.mark.parametrize("requested_by", ["manager-ref", "user:{id}"])
    def test_nobody_decides_their_own_request(self, requested_by: str) -> None:
        req = request(requested_by=requested_by.format(id=MANAGER.user_id))
        requester = MANAGER.user_id if requested_by == "manager-ref" else None
        with pytest.raises(NotAllowed, match="you requested this item"):
            approve(opened(rule(), req, requester), MANAGER)

    @pytest.mark.parametrize("requested_for", ["manager-ref", "user:{id}"])
    def test_nobody_decides_a_request_for_their_own_time_whoever_submitted_it(self, requested_for: str) -> None:
        # issue 17: a manager posts 16 h under their own user_ref (a PSA sends it, or they do over HTTP)
        req = request(requested_by="source:halopsa", requested_for=requested_for.format(id=MANAGER.user_id))
        subject = MANAGER.user_id if requested_for == "manager-ref" else None
        workflow, _ = open_workflow(req, rule(), requester_user_id=None, subject_user_id=subject, billing_now=T0)
        with pytest.raises(NotAllowed, match="or it is yours"):
            approve(workflow, MANAGER)
        assert approve(workflow, SECOND_MANAGER).final is not None  # somebody else may

    def test_a_decided_step_cannot_be_decided_again(self) -> None:
        done = approve(opened(rule()), MANAGER).workflow
        with pytest.raises(NotPending):
            approve(done, SECOND_MANAGER)
        two = approve(opened(rule(step(1, "billing_manager"), step(2, "admin"))), MANAGER).workflow
        with pytest.raises(WrongStep):
            approve(two, ADMIN, step=1)

    def test_the_next_steps_clock_starts_at_the_billing_time_of_the_decision(self) -> None:
        two = opened(rule(step(1, "billing_manager"), step(2, "admin", timeout_hours=24)))
        later = T0 + timedelta(days=3)
        moved = approve(two, MANAGER, billing_now=later).workflow
        assert moved.step_started_at == later
        assert moved.due_at == later + timedelta(hours=24)


class TestTimeouts:
    def test_nothing_happens_before_the_timeout(self) -> None:
        w = opened(rule(step(1, "billing_manager", timeout_hours=48)))
        assert w.due_at == T0 + timedelta(hours=48)
        assert time_out(w, now=T0 + timedelta(hours=47, minutes=59)) == []

    @pytest.mark.parametrize(("action", "outcome"), [("reject", "rejected"), ("approve", "approved")])
    def test_reject_or_approve_on_timeout_is_decided_by_the_system(self, action: str, outcome: str) -> None:
        w = opened(rule(step(1, "billing_manager", timeout_hours=48, on_timeout=action)))
        [t] = time_out(w, now=T0 + timedelta(hours=48))
        assert t.final is not None
        assert t.final.outcome.value == outcome
        assert t.final.decided_by == SYSTEM_TIMEOUT
        assert t.final.decided_at == T0 + timedelta(hours=48)

    def test_escalation_hands_the_step_on_once_then_rejects(self) -> None:
        w = opened(rule(step(1, "billing_manager", timeout_hours=24, on_timeout="escalate", escalate_to_role="admin")))
        [handed] = time_out(w, now=T0 + timedelta(hours=30))
        assert handed.final is None
        assert handed.decided is None
        assert handed.pending is not None
        assert handed.pending.reason is PendingReason.ESCALATED
        assert handed.workflow.roles == ("admin",)
        assert handed.workflow.due_at == T0 + timedelta(hours=48)
        with pytest.raises(NotAllowed):
            approve(handed.workflow, MANAGER)
        [rejected] = time_out(handed.workflow, now=T0 + timedelta(hours=48))
        assert rejected.final is not None
        assert rejected.final.outcome is ApprovalOutcome.REJECTED

    def test_a_clock_that_jumps_far_applies_every_timeout_in_order(self) -> None:
        w = opened(
            rule(
                step(1, "billing_manager", timeout_hours=24, on_timeout="approve"),
                step(2, "admin", timeout_hours=24, on_timeout="escalate", escalate_to_role="billing_manager"),
            )
        )
        steps = time_out(w, now=T0 + timedelta(days=10))
        assert [t.action for t in steps] == ["approval_step_approved", "approval_escalated", "approval_rejected"]
        final = steps[-1].final
        assert final is not None
        assert final.decided_at == T0 + timedelta(hours=72)

    def test_a_step_without_timeout_waits_forever(self) -> None:
        assert time_out(opened(rule()), now=T0 + timedelta(days=3650)) == []


def test_a_request_no_rule_holds_is_released_by_the_rules() -> None:
    released = approved_without_rule(request("9"), at=T0)
    assert released.outcome is ApprovalOutcome.APPROVED
    assert released.decided_by == SYSTEM_RULES
    assert released.reason is not None
    assert "hours 9" in released.reason
    assert Decimal(released.step) == 1
    assert ApprovalItemType(released.item_type) is ApprovalItemType.TIME_ENTRY


class TestBillableWorkIsNeverDroppedByATimeout:
    """Issue 18, item 5: an undecided time entry used to be rejected by system:timeout after 144 h (never billed);
    a usage rule held any record over 10,000 units, whatever the unit."""

    def escalating(self) -> ApprovalRule:
        return rule(
            step(1, "billing_manager", timeout_hours=24, on_timeout="escalate", escalate_to_role="admin",
                 after_escalation="remind")
        )  # fmt: skip

    def test_an_escalated_step_that_times_out_again_reminds_the_admins_and_stays_pending(self) -> None:
        handed, reminded = time_out(opened(self.escalating()), now=T0 + timedelta(hours=48))
        assert handed.pending is not None
        assert handed.pending.reason is PendingReason.ESCALATED
        assert reminded.final is None
        assert reminded.pending is not None
        assert (reminded.pending.reason, reminded.pending.roles) == (PendingReason.REMINDER, ["admin"])
        assert reminded.pending.occurred_at == T0 + timedelta(hours=48)
        assert reminded.workflow.due_at == T0 + timedelta(hours=72)  # and again every 24 h
        assert reminded.action == "approval_reminded"
        assert approve(reminded.workflow, ADMIN).final is not None  # an admin still decides it

    def test_a_clock_jump_over_many_reminders_sends_one_dated_the_last_it_passed(self) -> None:
        [_, first] = time_out(opened(self.escalating()), now=T0 + timedelta(hours=48))
        [jumped] = time_out(first.workflow, now=T0 + timedelta(hours=150))  # 72, 96, 120, 144 passed
        assert jumped.pending is not None
        assert jumped.pending.occurred_at == T0 + timedelta(hours=144)
        assert jumped.workflow.due_at == T0 + timedelta(hours=168)
        assert jumped.pending.notice_id != first.pending.notice_id  # type: ignore[union-attr]

    def test_remind_as_the_first_timeout_keeps_the_step_with_its_roles(self) -> None:
        w = opened(rule(step(1, "billing_manager", "approver", timeout_hours=72, on_timeout="remind")))
        [t] = time_out(w, now=T0 + timedelta(hours=72))
        assert t.pending is not None
        assert t.pending.roles == ["billing_manager", "approver"]
        assert t.workflow.status.value == "pending"

    def test_the_defaults_escalate_time_and_adjustments_then_remind_and_hold_no_usage(self) -> None:
        defaults = {r.item_type: r for r in rule_book.default_rules(TENANT, at=T0) if r.threshold_field != "percentage"}
        for kind in (ApprovalItemType.TIME_ENTRY, ApprovalItemType.BILLING_ADJUSTMENT):
            [only] = defaults[kind].steps
            assert (only.on_timeout.value, only.escalate_to_role, only.after_escalation.value) == (
                "escalate",
                "admin",
                "remind",
            )
        assert defaults[ApprovalItemType.USAGE_REPORT].active is False
        big_usage = request("50000", item_type="usage_report", trigger_field="quantity", service_code="backup-gb")
        assert rule_book.governing_rule(list(defaults.values()), big_usage) is None


class TestUsageRulesAreScopedByService:
    def seats_only(self) -> ApprovalRule:
        return rule(item_type="usage_report", field="quantity", threshold="500", service_codes=["m365"])

    def test_a_rule_holds_only_its_own_services_usage(self) -> None:
        seats = request("600", item_type="usage_report", trigger_field="quantity", service_code="m365")
        gigabytes = request("600", item_type="usage_report", trigger_field="quantity", service_code="backup-gb")
        assert rule_book.governing_rule([self.seats_only()], seats) is not None
        assert rule_book.governing_rule([self.seats_only()], gigabytes) is None

    def test_only_a_usage_rule_may_name_services(self) -> None:
        found = rule_book.problems(rule(service_codes=["m365"]))
        assert [(p.field, p.message) for p in found] == [
            ("service_codes", "only a usage_report rule is scoped to services")
        ]
