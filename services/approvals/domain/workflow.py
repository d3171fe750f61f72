"""A request's multi-step workflow, pure: who may decide, what a decision or a timeout does next.

- Steps are decided in order; each needs one decision by a user whose role the step names. A rejection at
  any step is final; an approval moves to the next step, and the last approval is final.
- Nobody decides their own request, and nobody decides two steps of one request (two steps mean two people).
- A decided step cannot be decided again: a decision names the step it decides (or the current one), and a
  request no longer pending refuses any decision.
- Timeouts run in the tenant's billing time. A step's clock starts when the step begins (the tenant's
  billing time then); after ``timeout_hours`` its ``on_timeout`` applies on the next tick: ``reject`` and
  ``approve`` decide the step as ``system:timeout``; ``remind`` keeps the step with its deciders and tells
  them again every ``timeout_hours`` (once per clock jump, however many reminders it passed); ``escalate``
  hands the step to ``escalate_to_role`` with a fresh timeout, once — an escalated step that times out
  again does its ``after_escalation`` (reject by default; the defaults for billable work remind). A clock
  that jumps several timeouts ahead applies them in order, each next step starting when the previous one
  timed out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from shared.contracts.approvals import (
    SYSTEM_TIMEOUT,
    ApprovalDecision,
    ApprovalOutcome,
    ApprovalPending,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
    PendingReason,
    TimeoutAction,
)

SYSTEM_RULES = "system:rules"
"""`ApprovalDecision.decided_by` when no active rule requires approval of the request's value."""


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class StepDecision:
    step: int
    outcome: ApprovalOutcome
    decided_by: str
    role: str | None
    comment: str | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Workflow:
    request: ApprovalRequest
    rule_id: UUID | None  # None when no rule held it (released at once)
    rule_version: int | None
    steps: tuple[ApprovalStep, ...]
    requester_user_id: UUID | None
    status: Status = Status.PENDING
    current_step: int = 1
    roles: tuple[str, ...] = ()
    escalated: bool = False
    step_started_at: datetime | None = None
    due_at: datetime | None = None
    decisions: tuple[StepDecision, ...] = field(default_factory=tuple)
    decided_by: str | None = None  # the final decider, once not pending
    subject_user_id: UUID | None = None  # the catalog user the item is for (requested_for), if one

    def involves(self, decider: Decider) -> bool:
        """Whether ``decider`` requested the item or it is theirs: they may not decide it."""
        people = {self.request.requested_by, self.request.requested_for} - {None}
        return decider.user_id in (self.requester_user_id, self.subject_user_id) or decider.actor in people

    decided_at: datetime | None = None

    @property
    def step(self) -> ApprovalStep:
        return self.steps[self.current_step - 1]


@dataclass(frozen=True, slots=True)
class Decider:
    user_id: UUID
    role: str

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Transition:
    """A workflow after one decision, with what to publish: a final decision, or the next wait."""

    workflow: Workflow
    decided: StepDecision | None  # None for an escalation: the step was handed on, not decided
    final: ApprovalDecision | None
    pending: ApprovalPending | None

    @property
    def action(self) -> str:
        """How the audit trail names what happened."""
        if self.decided is None:
            reminded = self.pending is not None and self.pending.reason is PendingReason.REMINDER
            return "approval_reminded" if reminded else "approval_escalated"
        if self.final is not None:
            return f"approval_{self.final.outcome.value}"
        return "approval_step_approved"


class Refused(Exception):
    """A decision that may not be made; ``status`` is the HTTP status the API answers with."""

    status = 409

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotPending(Refused):
    status = 409


class WrongStep(Refused):
    status = 409


class NotAllowed(Refused):
    status = 403


class CommentRequired(Refused):
    status = 422


# -- opening -------------------------------------------------------------------------------------------------


def open_workflow(
    request: ApprovalRequest,
    rule: ApprovalRule,
    *,
    requester_user_id: UUID | None,
    billing_now: datetime,
    subject_user_id: UUID | None = None,
) -> tuple[Workflow, ApprovalPending]:
    """A new request under ``rule``: its steps are copied, so editing the rule later never changes it."""
    workflow = Workflow(
        request=request,
        rule_id=rule.rule_id,
        rule_version=rule.version,
        steps=tuple(rule.steps),
        requester_user_id=requester_user_id,
        subject_user_id=subject_user_id,
    )
    started = _start_step(workflow, 1, at=billing_now)
    return started, notice(started, PendingReason.REQUESTED)


def approved_without_rule(request: ApprovalRequest, *, at: datetime) -> ApprovalDecision:
    """No active rule holds this value (the requester's copy of the rules was older): release the item."""
    return ApprovalDecision(
        decision_id=decision_id(request.request_id),
        request_id=request.request_id,
        tenant_id=request.tenant_id,
        item_type=request.item_type,
        item_id=request.item_id,
        outcome=ApprovalOutcome.APPROVED,
        decided_by=SYSTEM_RULES,
        reason=f"no active {request.item_type.value} rule requires approval of {request.trigger_field} "
        f"{request.trigger_value}",
        decided_at=at,
        step=1,
    )


def _start_step(workflow: Workflow, number: int, *, at: datetime, escalated_to: str | None = None) -> Workflow:
    step = workflow.steps[number - 1]
    due = at + timedelta(hours=step.timeout_hours) if step.timeout_hours is not None else None
    return replace(
        workflow,
        current_step=number,
        roles=(escalated_to,) if escalated_to else tuple(step.roles),
        escalated=escalated_to is not None,
        step_started_at=at,
        due_at=due,
    )


def notice(workflow: Workflow, reason: PendingReason, *, at: datetime | None = None) -> ApprovalPending:
    """What notification tells the step's deciders; ``at`` for a reminder (when it fell due)."""
    request = workflow.request
    assert workflow.step_started_at is not None
    which = f":{at.isoformat()}" if at is not None else ""
    return ApprovalPending(
        notice_id=uuid.uuid5(request.request_id, f"pending:{workflow.current_step}:{reason.value}{which}"),
        request_id=request.request_id,
        tenant_id=request.tenant_id,
        item_type=request.item_type,
        item_id=request.item_id,
        company_ref=request.company_ref,
        reason=reason,
        step=workflow.current_step,
        of_steps=len(workflow.steps),
        roles=list(workflow.roles),
        summary=request.summary,
        requested_by=request.requested_by,
        due_at=workflow.due_at,
        occurred_at=at or workflow.step_started_at,
    )


def decision_id(request_id: UUID) -> UUID:
    """One final decision per request, whatever path reached it."""
    return uuid.uuid5(request_id, "final-decision")


# -- deciding ------------------------------------------------------------------------------------------------


def decide(
    workflow: Workflow,
    decider: Decider,
    *,
    outcome: ApprovalOutcome,
    comment: str | None,
    step: int | None,
    at: datetime,
    billing_now: datetime,
) -> Transition:
    """A person's decision on the current step; raises `Refused` (with the reason) when they may not."""
    if workflow.status is not Status.PENDING:
        raise NotPending(f"request {workflow.request.request_id} is {workflow.status.value}: nothing left to decide")
    if step is not None and step != workflow.current_step:
        raise WrongStep(
            f"step {step} is not waiting: the request is at step {workflow.current_step} of {len(workflow.steps)}",
            field="step",
        )
    if decider.role not in workflow.roles:
        raise NotAllowed(
            f"role {decider.role!r} may not decide step {workflow.current_step} of this request; "
            f"it needs one of {sorted(workflow.roles)}"
        )
    if workflow.involves(decider):
        raise NotAllowed("you requested this item or it is yours: somebody else must decide it")
    if any(d.decided_by == decider.actor for d in workflow.decisions):
        raise NotAllowed("you decided an earlier step of this request: another person must decide this one")
    if outcome is ApprovalOutcome.REJECTED and not (comment and comment.strip()):
        raise CommentRequired("a rejection needs a comment saying why", field="comment")
    made = StepDecision(
        step=workflow.current_step,
        outcome=outcome,
        decided_by=decider.actor,
        role=decider.role,
        comment=comment,
        decided_at=at,
    )
    return _apply(workflow, made, next_step_at=billing_now)


def _apply(workflow: Workflow, made: StepDecision, *, next_step_at: datetime) -> Transition:
    decided = replace(workflow, decisions=(*workflow.decisions, made))
    if made.outcome is ApprovalOutcome.APPROVED and workflow.current_step < len(workflow.steps):
        moved = _start_step(decided, workflow.current_step + 1, at=next_step_at)
        return Transition(moved, made, None, notice(moved, PendingReason.NEXT_STEP))
    status = Status.APPROVED if made.outcome is ApprovalOutcome.APPROVED else Status.REJECTED
    finished = replace(decided, status=status, due_at=None)
    request = workflow.request
    final = ApprovalDecision(
        decision_id=decision_id(request.request_id),
        request_id=request.request_id,
        tenant_id=request.tenant_id,
        item_type=request.item_type,
        item_id=request.item_id,
        outcome=made.outcome,
        decided_by=made.decided_by,
        reason=made.comment,
        decided_at=made.decided_at,
        step=made.step,
    )
    return Transition(finished, made, final, None)


# -- timeouts ------------------------------------------------------------------------------------------------


def time_out(workflow: Workflow, *, now: datetime) -> list[Transition]:
    """Every timeout due at or before ``now``, in order (empty when nothing is due)."""
    done: list[Transition] = []
    current = workflow
    while current.status is Status.PENDING and current.due_at is not None and current.due_at <= now:
        due = current.due_at
        step = current.step
        if step.on_timeout is TimeoutAction.ESCALATE and not current.escalated:
            assert step.escalate_to_role is not None  # the contract requires it for escalate
            escalated = _start_step(current, current.current_step, at=due, escalated_to=step.escalate_to_role)
            done.append(Transition(escalated, None, None, notice(escalated, PendingReason.ESCALATED)))
            current = escalated
            continue
        action = step.after_escalation if current.escalated else step.on_timeout
        if action is TimeoutAction.REMIND:
            done.append(_remind(current, now=now))
            return done
        outcome = ApprovalOutcome.APPROVED if action is TimeoutAction.APPROVE else ApprovalOutcome.REJECTED
        why = (
            f"no decision within {step.timeout_hours} h of escalation to {current.roles[0]}"
            if current.escalated
            else f"no decision within {step.timeout_hours} h"
        )
        made = StepDecision(
            step=current.current_step,
            outcome=outcome,
            decided_by=SYSTEM_TIMEOUT,
            role=None,
            comment=f"{why}: {outcome.value} on timeout",
            decided_at=due,
        )
        transition = _apply(current, made, next_step_at=due)
        done.append(transition)
        current = transition.workflow
    return done


def _remind(workflow: Workflow, *, now: datetime) -> Transition:
    """The step stays with its deciders; they are told again, once however many reminders a clock jump passed,
    and the next reminder falls due ``timeout_hours`` after the last one missed."""
    assert workflow.due_at is not None
    assert workflow.step.timeout_hours is not None
    every = timedelta(hours=workflow.step.timeout_hours)
    last = workflow.due_at + every * ((now - workflow.due_at) // every)
    reminded = replace(workflow, due_at=last + every)
    return Transition(reminded, None, None, notice(reminded, PendingReason.REMINDER, at=last))
