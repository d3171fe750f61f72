"""Approvals' HTTP API and message handlers: translate, call a use case, translate back.

The tenant and the caller always come from the bearer token. Deciding needs ``approvals:decide`` *and* a role
the waiting step names; editing rules needs ``approvals:manage`` (admins).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.approvals import use_cases
from services.approvals.domain.workflow import Decider, Refused, Workflow
from shared.auth import Permission, Principal, requires
from shared.contracts.approvals import (
    ApprovalItemType,
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
)
from shared.contracts.base import CurrencyCode, NonNegativeDecimalStr
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

# -- consumers -----------------------------------------------------------------------------------------------


def parse_request(env: Envelope) -> tuple[UUID, ApprovalRequest]:
    return parse_contract(env, ApprovalRequest)


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


REQUESTS = BatchConsumer(service="approvals", consumer="requests", parse=parse_request, apply=use_cases.take_requests)
CLOCK = BatchConsumer(service="approvals", consumer="clock", parse=parse_tick, apply=use_cases.apply_ticks)
CATALOG = BatchConsumer(service="approvals", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)

# -- HTTP ----------------------------------------------------------------------------------------------------

Approver = Annotated[Principal, Depends(requires(Permission.APPROVALS_DECIDE))]
Reader = Annotated[Principal, Depends(requires(Permission.CATALOG_READ))]
RuleManager = Annotated[Principal, Depends(requires(Permission.APPROVALS_MANAGE))]

router = APIRouter(prefix="/v1")


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a person decided (audit metadata); timeouts run on billing-clock ticks.
    return datetime.now(UTC)


class RuleInput(BaseModel):
    item_type: ApprovalItemType = Field(description="Kind of item the rule holds", examples=["time_entry"])
    threshold_field: str = Field(
        description="time_entry: hours; usage_report: quantity or amount; discount: percentage or amount; "
        "billing_adjustment, credit, refund, invoice: amount",
        examples=["hours"],
    )
    threshold: NonNegativeDecimalStr = Field(description="Held when the value is strictly greater", examples=["8"])
    currency: CurrencyCode | None = Field(default=None, description="Only for amount thresholds", examples=[None])
    steps: list[ApprovalStep] = Field(min_length=1, description="Decision steps, in order")
    active: bool = Field(default=True, description="Inactive rules hold nothing", examples=[True])


class RuleSetOut(BaseModel):
    version: int = Field(description="Version of the tenant's published rule set (0 before any)")
    rules: list[ApprovalRule]


class SavedRule(BaseModel):
    changed: bool
    rule: ApprovalRule


class DecisionInput(BaseModel):
    comment: str | None = Field(
        default=None, max_length=2000, description="Why; required to reject", examples=["Onsite day, agreed"]
    )
    step: int | None = Field(
        default=None, ge=1, description="The step you are deciding; refused (409) if the request moved on", examples=[1]
    )


class StepOut(BaseModel):
    step: int
    roles: list[str]
    timeout_hours: int | None
    on_timeout: str
    escalate_to_role: str | None
    outcome: ApprovalOutcome | None = Field(description="Null while undecided")
    decided_by: str | None
    comment: str | None
    decided_at: datetime | None


class RequestOut(BaseModel):
    request_id: UUID
    item_type: ApprovalItemType
    item_id: str
    company_ref: str | None
    requesting_service: str
    requested_by: str | None = Field(description="Who submitted the item (`user:<id>`, or `source:<system>`)")
    requested_for: str | None = Field(description="Whose item it is (a time entry's technician), if anyone's")
    trigger_field: str
    trigger_value: Decimal
    currency: str | None
    summary: str
    details: dict[str, Any]
    requested_at: datetime
    status: str = Field(description="pending, approved, rejected, or superseded by a newer request for the item")
    rule_id: UUID | None = Field(description="Null when no rule held it (released at once)")
    rule_version: int | None
    current_step: int
    waiting_for_roles: list[str] = Field(description="Roles that may decide now (empty unless pending)")
    escalated: bool
    due_at: datetime | None = Field(description="Billing time when the waiting step times out")
    decided_by: str | None
    decided_at: datetime | None
    steps: list[StepOut]


class Page(BaseModel):
    items: list[RequestOut]
    next_after: UUID | None


def _out(w: Workflow) -> RequestOut:
    r = w.request
    decided = {d.step: d for d in w.decisions}
    pending = w.status.value == "pending"
    return RequestOut(
        request_id=r.request_id,
        item_type=r.item_type,
        item_id=r.item_id,
        company_ref=r.company_ref,
        requesting_service=r.requesting_service,
        requested_by=r.requested_by,
        requested_for=r.requested_for,
        trigger_field=r.trigger_field,
        trigger_value=r.trigger_value,
        currency=r.currency,
        summary=r.summary,
        details=r.details,
        requested_at=r.requested_at,
        status=w.status.value,
        rule_id=w.rule_id,
        rule_version=w.rule_version,
        current_step=w.current_step,
        waiting_for_roles=list(w.roles) if pending else [],
        escalated=w.escalated,
        due_at=w.due_at,
        decided_by=w.decided_by,
        decided_at=w.decided_at,
        steps=[
            StepOut(
                step=s.step,
                roles=list(s.roles),
                timeout_hours=s.timeout_hours,
                on_timeout=s.on_timeout.value,
                escalate_to_role=s.escalate_to_role,
                outcome=decided[s.step].outcome if s.step in decided else None,
                decided_by=decided[s.step].decided_by if s.step in decided else None,
                comment=decided[s.step].comment if s.step in decided else None,
                decided_at=decided[s.step].decided_at if s.step in decided else None,
            )
            for s in w.steps
        ],
    )


def _decider(principal: Principal) -> Decider:
    return Decider(user_id=principal.user_id, role=principal.role.value)


# -- rules ---------------------------------------------------------------------------------------------------


@router.get("/approval-rules", summary="The tenant's approval rules (current versions)", tags=["rules"])
async def get_rules(request: Request, principal: Reader) -> RuleSetOut:
    version, rules = await use_cases.rule_set(_pool(request), tenant_id=principal.tenant_id)
    return RuleSetOut(version=version, rules=rules)


@router.put(
    "/approval-rules/{rule_id}",
    summary="Create or change an approval rule (admins); publishes the tenant's rule set",
    tags=["rules"],
    description="A change is a new version of the rule; requests already open keep the steps they started with.",
)
async def put_rule(rule_id: UUID, body: RuleInput, request: Request, principal: RuleManager) -> SavedRule:
    try:
        rule, changed = await use_cases.save_rule(
            _pool(request),
            tenant_id=principal.tenant_id,
            rule_id=rule_id,
            fields=body.model_dump(),
            actor=principal.actor,
            at=_now(),
        )
    except use_cases.Invalid as exc:
        detail = [{"loc": ["body", *p.field.split(".")], "msg": p.message} for p in exc.problems]
        raise HTTPException(status_code=422, detail=detail) from exc
    return SavedRule(changed=changed, rule=rule)


@router.post(
    "/approval-rules/republish",
    summary="Publish the tenant's rule set again (for a requesting service rebuilding its copy)",
    tags=["rules"],
)
async def republish(request: Request, principal: RuleManager) -> RuleSetOut:
    await use_cases.republish_rules(_pool(request), tenant_id=principal.tenant_id, actor=principal.actor, at=_now())
    version, rules = await use_cases.rule_set(_pool(request), tenant_id=principal.tenant_id)
    return RuleSetOut(version=version, rules=rules)


# -- requests and decisions ----------------------------------------------------------------------------------


@router.get("/approvals/pending", summary="What I may decide now", tags=["approvals"])
async def pending(
    request: Request, principal: Approver, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[RequestOut]:
    found = await use_cases.pending_for(
        _pool(request), tenant_id=principal.tenant_id, decider=_decider(principal), limit=limit
    )
    return [_out(w) for w in found]


@router.get("/approvals", summary="Approval requests, newest state (keyset pages by request_id)", tags=["approvals"])
async def list_requests(
    request: Request,
    principal: Reader,
    status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|superseded)$")] = None,
    item_type: ApprovalItemType | None = None,
    after: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page:
    found = await use_cases.listing(
        _pool(request),
        tenant_id=principal.tenant_id,
        status=status,
        item_type=item_type.value if item_type else None,
        after=after,
        limit=limit,
    )
    return Page(
        items=[_out(w) for w in found], next_after=found[-1].request.request_id if len(found) == limit else None
    )


@router.get("/approvals/{request_id}", summary="One request with its steps and decisions", tags=["approvals"])
async def get_request(request_id: UUID, request: Request, principal: Reader) -> RequestOut:
    try:
        return _out(await use_cases.one(_pool(request), tenant_id=principal.tenant_id, request_id=request_id))
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get(
    "/approval-items/{item_type}/{item_id}",
    summary="The approval history of an item: every request for it, with every decision",
    tags=["approvals"],
)
async def item_history(
    item_type: ApprovalItemType, item_id: str, request: Request, principal: Reader
) -> list[RequestOut]:
    found = await use_cases.history(
        _pool(request), tenant_id=principal.tenant_id, item_type=item_type.value, item_id=item_id
    )
    return [_out(w) for w in found]


async def _decide(
    request_id: UUID, body: DecisionInput, request: Request, principal: Principal, outcome: ApprovalOutcome
) -> RequestOut:
    decider = _decider(principal)
    at = _now()
    try:
        workflow = await use_cases.decide(
            _pool(request),
            tenant_id=principal.tenant_id,
            request_id=request_id,
            decider=decider,
            outcome=outcome,
            comment=body.comment,
            step=body.step,
            at=at,
        )
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except Refused as exc:
        await use_cases.refuse_audited(
            _pool(request), tenant_id=principal.tenant_id, request_id=request_id, decider=decider, refusal=exc, at=at
        )
        if exc.field is not None:
            raise HTTPException(status_code=exc.status, detail=[{"loc": ["body", exc.field], "msg": str(exc)}]) from exc
        raise HTTPException(status_code=exc.status, detail=str(exc)) from exc
    return _out(workflow)


@router.post(
    "/approvals/{request_id}/approve",
    summary="Approve the step waiting (your role must be one the step names)",
    tags=["approvals"],
    description="403 when your role may not decide this step, when you requested the item, or when you decided "
    "an earlier step; 409 when the request is no longer pending or `step` is not the one waiting.",
)
async def approve(request_id: UUID, body: DecisionInput, request: Request, principal: Approver) -> RequestOut:
    return await _decide(request_id, body, request, principal, ApprovalOutcome.APPROVED)


@router.post(
    "/approvals/{request_id}/reject",
    summary="Reject the request at the step waiting (a comment is required)",
    tags=["approvals"],
    description="Same refusals as approve; 422 without a comment.",
)
async def reject(request_id: UUID, body: DecisionInput, request: Request, principal: Approver) -> RequestOut:
    return await _decide(request_id, body, request, principal, ApprovalOutcome.REJECTED)
