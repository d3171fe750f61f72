"""Approvals' use cases: consumers run inside the kernel's batch transaction; HTTP ones open their own.

Every change writes an audit row, and everything published goes through the outbox, in the same
transaction as the change it reports.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError

from services.approvals.adapters.repository import ApprovalsRepository, request_fingerprint
from services.approvals.domain import rules as rule_book
from services.approvals.domain import workflow as flow
from services.approvals.domain.workflow import Decider, Status, Transition, Workflow
from shared import audit, principals, topics
from shared.contracts.approvals import (
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ApprovalRuleSet,
    PendingReason,
)
from shared.contracts.catalog import CatalogEvent, TenantState
from shared.contracts.clock import ClockTick
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Reject, Rejections
from shared.messaging.envelope import Parsed

log = structlog.get_logger(__name__)


class NotFound(LookupError):
    pass


class Invalid(Exception):
    def __init__(self, problems: list[rule_book.Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


# -- rules ---------------------------------------------------------------------------------------------------


async def _publish_rule_set(uow: UnitOfWork, repo: ApprovalsRepository, tenant_id: UUID, *, at: datetime) -> int:
    version = await repo.bump_rule_set(tenant_id)
    _, current = await repo.rules()
    rule_set = ApprovalRuleSet(tenant_id=tenant_id, rules=current, version=version, occurred_at=at)
    uow.publish(
        topic=topics.APPROVAL_RULES.name,
        key=rule_set.key(),
        message=rule_set,
        message_id=uuid.uuid5(tenant_id, f"approval-rule-set:{version}"),
    )
    return version


async def _ensure_rules(uow: UnitOfWork, repo: ApprovalsRepository, tenant_id: UUID, *, at: datetime) -> None:
    """Give a tenant heard of for the first time its default rules (once, whoever asks first)."""
    await repo.lock_tenant_rules(tenant_id)
    if await repo.has_rule_set():
        return
    defaults = rule_book.default_rules(tenant_id, at=at)
    await repo.add_rules(defaults, actor="system:defaults")
    await _publish_rule_set(uow, repo, tenant_id, at=at)
    for rule in defaults:
        await audit.record(
            uow,
            actor="system:defaults",
            action="approval_rule_created",
            entity_type="approval_rule",
            entity_id=rule.rule_id,
            at=at,
            after=rule,
        )


async def rule_set(pool: asyncpg.Pool, *, tenant_id: UUID) -> tuple[int, list[ApprovalRule]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await ApprovalsRepository(uow.conn).rules()


def _problem(error: Any) -> rule_book.Problem:
    """A contract error as a field problem (a rule-wide one, such as step numbering, is the steps')."""
    field = ".".join(str(p) for p in error["loc"]) or "steps"
    return rule_book.Problem(field, str(error["msg"]).removeprefix("Value error, "))


async def save_rule(
    pool: asyncpg.Pool, *, tenant_id: UUID, rule_id: UUID, fields: dict[str, Any], actor: str, at: datetime
) -> tuple[ApprovalRule, bool]:
    """Create or change a rule: a new version when anything differs; returns it and whether it changed."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = ApprovalsRepository(uow.conn)
        await _ensure_rules(uow, repo, tenant_id, at=at)
        await repo.rules(lock=True)
        before = await repo.rule(rule_id)
        try:
            candidate = ApprovalRule.model_validate(
                {
                    **fields,
                    "rule_id": rule_id,
                    "tenant_id": tenant_id,
                    "version": (before.version + 1) if before else 1,
                    "updated_at": at,
                }
            )
        except ValidationError as exc:  # the contract's own checks (steps numbered 1..n): a 422, not a 500
            raise Invalid([_problem(e) for e in exc.errors()]) from exc
        found = rule_book.problems(candidate)
        if found:
            raise Invalid(found)
        if before is not None and _same_terms(before, candidate):
            return before, False
        await repo.add_rules([candidate], actor=actor)
        await _publish_rule_set(uow, repo, tenant_id, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="approval_rule_created" if before is None else "approval_rule_changed",
            entity_type="approval_rule",
            entity_id=rule_id,
            at=at,
            before=before,
            after=candidate,
        )
        return candidate, True


def _same_terms(a: ApprovalRule, b: ApprovalRule) -> bool:
    skip = {"version", "updated_at"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


async def republish_rules(pool: asyncpg.Pool, *, tenant_id: UUID, actor: str, at: datetime) -> int:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = ApprovalsRepository(uow.conn)
        await _ensure_rules(uow, repo, tenant_id, at=at)
        await repo.rules(lock=True)
        version = await _publish_rule_set(uow, repo, tenant_id, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="approval_rules_republished",
            entity_type="approval_rule_set",
            entity_id=tenant_id,
            at=at,
            after={"version": version},
        )
        return version


# -- consumers -----------------------------------------------------------------------------------------------


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
    repo = ApprovalsRepository(uow.conn)
    for item in items:
        event = item.body
        await repo.save_catalog(event)
        if isinstance(event.state, TenantState) and not event.deleted:
            await _ensure_rules(uow, repo, event.tenant_id, at=event.occurred_at)
    return []


async def take_requests(uow: UnitOfWork, items: Sequence[Parsed[ApprovalRequest]]) -> Rejections[ApprovalRequest]:
    """Open a workflow per new request; a repeat of one already taken changes nothing."""
    repo = ApprovalsRepository(uow.conn)
    tenant_id = uow.require_tenant()
    await _ensure_rules(uow, repo, tenant_id, at=items[0].body.requested_at)
    known = await repo.fingerprints([i.body.request_id for i in items])
    _, current_rules = await repo.rules()
    refused: Rejections[ApprovalRequest] = []
    for item in items:
        request = item.body
        fingerprint = request_fingerprint(request)
        if request.request_id in known:
            if known[request.request_id] != fingerprint:
                reason = f"request {request.request_id} was already made for a different item or value"
                refused.append((item, Reject(reason, error_class="conflict", field="request_id")))
            continue
        known[request.request_id] = fingerprint
        await _open(uow, repo, request, current_rules)
    return refused


async def _open(
    uow: UnitOfWork, repo: ApprovalsRepository, request: ApprovalRequest, current_rules: list[ApprovalRule]
) -> None:
    received_at = request.requested_at
    for old in await repo.supersede_pending(request.item_type.value, request.item_id, by=request.request_id):
        await audit.record(
            uow,
            actor=f"service:{request.requesting_service}",
            action="approval_superseded",
            entity_type="approval_request",
            entity_id=old,
            at=received_at,
            after={"superseded_by": str(request.request_id)},
        )
    rule = rule_book.governing_rule(current_rules, request)
    if rule is None:
        decision = flow.approved_without_rule(request, at=received_at)
        await repo.insert_released(
            request, decided_by=decision.decided_by, decided_at=decision.decided_at, received_at=received_at
        )
        uow.publish(
            topic=topics.APPROVAL_DECISIONS.name, key=decision.key(), message=decision, message_id=decision.decision_id
        )
        await audit.record(
            uow,
            actor=decision.decided_by,
            action="approval_released",
            entity_type="approval_request",
            entity_id=request.request_id,
            at=received_at,
            after=decision,
        )
        return
    requester = await repo.user_named(request.requested_by) if request.requested_by else None
    subject = await repo.user_named(request.requested_for) if request.requested_for else None
    billing_now = await repo.billing_now() or request.requested_at
    workflow, pending = flow.open_workflow(
        request, rule, requester_user_id=requester, subject_user_id=subject, billing_now=billing_now
    )
    await repo.insert_workflow(workflow, received_at=received_at)
    uow.publish(topic=topics.APPROVAL_PENDING.name, key=pending.key(), message=pending, message_id=pending.notice_id)
    await audit.record(
        uow,
        actor=request.requested_by or f"service:{request.requesting_service}",
        action="approval_requested",
        entity_type="approval_request",
        entity_id=request.request_id,
        at=received_at,
        after={"request": request.model_dump(mode="json"), "rule_id": str(rule.rule_id), "rule_version": rule.version},
    )


async def apply_ticks(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """Move the tenant's billing time and apply every timeout now due."""
    repo = ApprovalsRepository(uow.conn)
    tenant_id = uow.require_tenant()
    now = await repo.advance_clock(tenant_id, max(i.body.now for i in items))
    for workflow in await repo.due(now):
        for transition in flow.time_out(workflow, now=now):
            await _record(uow, repo, workflow, transition, actor="system:timeout")
            workflow = transition.workflow
    return []


async def _record(
    uow: UnitOfWork, repo: ApprovalsRepository, before: Workflow, transition: Transition, *, actor: str
) -> None:
    after = transition.workflow
    request_id = after.request.request_id
    if transition.decided is not None:
        await repo.add_step_decision(request_id, transition.decided)
    await repo.update_workflow(after)
    if transition.final is not None:
        uow.publish(
            topic=topics.APPROVAL_DECISIONS.name,
            key=transition.final.key(),
            message=transition.final,
            message_id=transition.final.decision_id,
        )
    if transition.pending is not None:
        uow.publish(
            topic=topics.APPROVAL_PENDING.name,
            key=transition.pending.key(),
            message=transition.pending,
            message_id=transition.pending.notice_id,
        )
    at = transition.decided.decided_at if transition.decided else None
    if at is None:  # an escalation starts its step; a reminder happens when it fell due
        reminder = transition.pending is not None and transition.pending.reason is PendingReason.REMINDER
        at = transition.pending.occurred_at if reminder and transition.pending else after.step_started_at
        at = at or before.due_at
    assert at is not None
    await audit.record(
        uow,
        actor=actor,
        action=transition.action,
        entity_type="approval_request",
        entity_id=request_id,
        at=at,
        before=_progress(before),
        after=_progress(after) | ({"comment": transition.decided.comment} if transition.decided else {}),
    )


def _progress(workflow: Workflow) -> dict[str, Any]:
    return {
        "status": workflow.status.value,
        "step": workflow.current_step,
        "roles": list(workflow.roles),
        "due_at": workflow.due_at.isoformat() if workflow.due_at else None,
    }


# -- decisions over HTTP -------------------------------------------------------------------------------------


async def decide(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    request_id: UUID,
    decider: Decider,
    outcome: ApprovalOutcome,
    comment: str | None,
    step: int | None,
    at: datetime,
) -> Workflow:
    """A person decides the step waiting; concurrent decisions on one request are serialized (row lock)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = ApprovalsRepository(uow.conn)
        workflow = await repo.workflow(request_id, lock=True)
        if workflow is None:
            raise NotFound(f"no approval request {request_id}")
        billing_now = await repo.billing_now() or at
        transition = flow.decide(
            workflow, decider, outcome=outcome, comment=comment, step=step, at=at, billing_now=billing_now
        )
        await _record(uow, repo, workflow, transition, actor=decider.actor)
        return transition.workflow


async def refuse_audited(
    pool: asyncpg.Pool, *, tenant_id: UUID, request_id: UUID, decider: Decider, refusal: flow.Refused, at: datetime
) -> None:
    """A refused attempt to decide is part of the trail too (who tried what, and why not)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        await audit.record(
            uow,
            actor=decider.actor,
            action="approval_decision_refused",
            entity_type="approval_request",
            entity_id=request_id,
            at=at,
            after={"reason": str(refusal), "role": decider.role},
        )


async def pending_for(pool: asyncpg.Pool, *, tenant_id: UUID, decider: Decider, limit: int) -> list[Workflow]:
    """What this person may decide now: their role is named, they did not request it or decide a step of it."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        waiting = await ApprovalsRepository(uow.conn).listing(
            status=Status.PENDING.value, item_type=None, roles=[decider.role], after=None, limit=10_000
        )
    mine = [w for w in waiting if not w.involves(decider) and all(d.decided_by != decider.actor for d in w.decisions)]
    return sorted(mine, key=lambda w: (w.due_at is None, w.due_at, w.request.requested_at))[:limit]


async def listing(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    status: str | None,
    item_type: str | None,
    after: UUID | None,
    limit: int,
) -> list[Workflow]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await ApprovalsRepository(uow.conn).listing(
            status=status, item_type=item_type, roles=None, after=after, limit=limit
        )


async def one(pool: asyncpg.Pool, *, tenant_id: UUID, request_id: UUID) -> Workflow:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        found = await ApprovalsRepository(uow.conn).workflow(request_id)
    if found is None:
        raise NotFound(f"no approval request {request_id}")
    return found


async def history(pool: asyncpg.Pool, *, tenant_id: UUID, item_type: str, item_id: str) -> list[Workflow]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await ApprovalsRepository(uow.conn).of_item(item_type, item_id)
