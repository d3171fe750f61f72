"""Catalog HTTP API: translate requests into use-case calls; no SQL, no arithmetic."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field

from services.catalog import use_cases
from services.catalog.domain.clock import ClockError
from shared.clock.lag import ConsumerLagProbe, LagNotSettled
from shared.contracts.base import Timestamp
from shared.contracts.catalog import (
    AssignmentState,
    CatalogEvent,
    CompanyState,
    PlanState,
    ServiceState,
    TenantState,
)


class AdvanceClock(BaseModel):
    to: Timestamp = Field(
        description="The billing time to move the sandbox tenant to", examples=["2026-02-01T00:00:00+00:00"]
    )


class ClockAdvanced(BaseModel):
    tenant_id: UUID
    previous: datetime | None
    now: datetime
    waited_for_consumers_s: float


def _operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    expected = f"Bearer {request.app.state.admin_token}"
    if authorization is None or not hmac.compare_digest(authorization, expected):
        raise HTTPException(status_code=401, detail="missing or wrong operator token (Authorization: Bearer …)")
    return "operator"


Operator = Annotated[str, Depends(_operator)]


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a request arrived (audit metadata); domain code never reads the clock.
    return datetime.now(UTC)


def _same_tenant(path_tenant: UUID, state: Any, *, id_field: str | None = None, path_id: UUID | None = None) -> None:
    """The path names the entity; a body naming another tenant or entity is refused, field by field."""
    problems = []
    if state.tenant_id != path_tenant:
        problems.append({"loc": ["body", "tenant_id"], "msg": "must match the tenant in the path"})
    if id_field is not None and getattr(state, id_field) != path_id:
        problems.append({"loc": ["body", id_field], "msg": f"must match the {id_field} in the path"})
    if problems:
        raise HTTPException(status_code=422, detail=problems)


router = APIRouter(prefix="/v1", tags=["catalog"])


@router.put("/tenants/{tenant_id}", summary="Create or update a tenant (MSP)")
async def put_tenant(tenant_id: UUID, body: TenantState, request: Request, actor: Operator) -> CatalogEvent:
    _same_tenant(tenant_id, body)
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.put("/tenants/{tenant_id}/companies/{company_id}", summary="Create or update a client")
async def put_company(
    tenant_id: UUID, company_id: UUID, body: CompanyState, request: Request, actor: Operator
) -> CatalogEvent:
    _same_tenant(tenant_id, body, id_field="company_id", path_id=company_id)
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.put("/tenants/{tenant_id}/services/{service_id}", summary="Create or update a service")
async def put_service(
    tenant_id: UUID, service_id: UUID, body: ServiceState, request: Request, actor: Operator
) -> CatalogEvent:
    _same_tenant(tenant_id, body, id_field="service_id", path_id=service_id)
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.put("/tenants/{tenant_id}/plans/{plan_id}", summary="Create or update a plan")
async def put_plan(tenant_id: UUID, plan_id: UUID, body: PlanState, request: Request, actor: Operator) -> CatalogEvent:
    _same_tenant(tenant_id, body, id_field="plan_id", path_id=plan_id)
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.put("/tenants/{tenant_id}/assignments/{assignment_id}", summary="Assign a plan to a client")
async def put_assignment(
    tenant_id: UUID, assignment_id: UUID, body: AssignmentState, request: Request, actor: Operator
) -> CatalogEvent:
    _same_tenant(tenant_id, body, id_field="assignment_id", path_id=assignment_id)
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.post(
    "/tenants/{tenant_id}/test-clock/advance",
    summary="Advance a sandbox tenant's test clock",
    description="Waits until every consumer group has caught up with everything published before, "
    "then publishes the tick. 409 if the tenant is live or the time is not later than the clock.",
)
async def advance_clock(tenant_id: UUID, body: AdvanceClock, request: Request, actor: Operator) -> ClockAdvanced:
    lag: ConsumerLagProbe = request.app.state.lag_probe
    try:
        tick, waited = await use_cases.advance_test_clock(
            _pool(request),
            lag,
            tenant_id=tenant_id,
            to=body.to,
            actor=actor,
            at=_now(),
            timeout_s=request.app.state.advance_timeout_s,
        )
    except use_cases.UnknownTenant as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ClockError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except LagNotSettled as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return ClockAdvanced(
        tenant_id=tenant_id, previous=tick.previous, now=tick.now, waited_for_consumers_s=round(waited, 3)
    )
