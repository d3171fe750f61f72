"""Catalog HTTP API: translate requests into use-case calls; no SQL, no arithmetic.

Tenant-scoped routes take the tenant from the caller's bearer token, never from the path or body. Only the
platform operator (``ADMIN_TOKEN``) creates tenants and their first admin credential.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field, create_model

from services.catalog import use_cases
from services.catalog.domain.clock import ClockError
from shared.auth import Permission, Principal, TokenIssuer, requires
from shared.clock.lag import ConsumerLagProbe, LagNotSettled
from shared.contracts.base import Timestamp
from shared.contracts.catalog import (
    AssignmentState,
    CatalogEvent,
    CompanyState,
    PlanState,
    ServiceState,
    TenantState,
    UserState,
)


def _input(model: type[BaseModel]) -> Any:
    """The request body of an entity: its state without ``tenant_id`` (that comes from the credential)."""
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items() if n != "tenant_id"}
    return create_model(f"{model.__name__.removesuffix('State')}Input", **fields)


CompanyInput = _input(CompanyState)
ServiceInput = _input(ServiceState)
PlanInput = _input(PlanState)
AssignmentInput = _input(AssignmentState)
UserInput = _input(UserState)


class AdvanceClock(BaseModel):
    to: Timestamp = Field(
        description="The billing time to move the sandbox tenant to", examples=["2026-02-01T00:00:00+00:00"]
    )


class ClockAdvanced(BaseModel):
    tenant_id: UUID
    previous: datetime | None
    now: datetime
    waited_for_consumers_s: float


class AdminRequest(BaseModel):
    email: str = Field(min_length=3, description="The tenant admin's email", examples=["it@northwind.example"])
    name: str = Field(min_length=1, description="Their name", examples=["Pat Admin"])


class IssuedKey(BaseModel):
    user_id: UUID
    api_key: str = Field(description="Shown once; exchange it at POST /v1/auth/token")


class TokenRequest(BaseModel):
    api_key: str = Field(min_length=1, description="An API key issued for a user")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


def _operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    expected = f"Bearer {request.app.state.admin_token}"
    if authorization is None or not hmac.compare_digest(authorization, expected):
        raise HTTPException(status_code=401, detail="missing or wrong platform operator token")
    return "platform-operator"


Operator = Annotated[str, Depends(_operator)]
Reader = Annotated[Principal, Depends(requires(Permission.CATALOG_READ))]
Writer = Annotated[Principal, Depends(requires(Permission.CATALOG_WRITE))]
UserAdmin = Annotated[Principal, Depends(requires(Permission.USERS_MANAGE))]
ClockAdvancer = Annotated[Principal, Depends(requires(Permission.CLOCK_ADVANCE))]


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a request arrived (audit metadata); domain code never reads the clock.
    return datetime.now(UTC)


def _path_matches(body: BaseModel, id_field: str, path_id: UUID) -> None:
    if getattr(body, id_field) != path_id:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body", id_field], "msg": f"must match the {id_field} in the path"}]
        )


async def _save(request: Request, principal: Principal, state_type: type[Any], body: BaseModel) -> CatalogEvent:
    state = state_type(tenant_id=principal.tenant_id, **body.model_dump())
    return await use_cases.save_entity(_pool(request), state=state, actor=principal.actor, at=_now())


router = APIRouter(prefix="/v1", tags=["catalog"])


# -- platform operator ------------------------------------------------------------------------------------
@router.put("/tenants/{tenant_id}", summary="Create or update a tenant (platform operator)")
async def put_tenant(tenant_id: UUID, body: TenantState, request: Request, actor: Operator) -> CatalogEvent:
    if body.tenant_id != tenant_id:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body", "tenant_id"], "msg": "must match the tenant in the path"}]
        )
    return await use_cases.save_entity(_pool(request), state=body, actor=actor, at=_now())


@router.post("/tenants/{tenant_id}/admin-keys", summary="Create the tenant's admin and an API key (operator)")
async def admin_key(tenant_id: UUID, body: AdminRequest, request: Request, actor: Operator) -> IssuedKey:
    try:
        user, key = await use_cases.bootstrap_admin(
            _pool(request), tenant_id=tenant_id, email=body.email, name=body.name, actor=actor, at=_now()
        )
    except use_cases.UnknownTenant as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return IssuedKey(user_id=user.user_id, api_key=str(key))


# -- credentials ------------------------------------------------------------------------------------------
@router.post("/auth/token", summary="Exchange an API key for a short-lived bearer token")
async def token(body: TokenRequest, request: Request) -> TokenResponse:
    try:
        principal = await use_cases.authenticate(_pool(request), api_key=body.api_key)
    except use_cases.InvalidCredential as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    issuer: TokenIssuer = request.app.state.token_issuer
    ttl: timedelta = request.app.state.token_ttl
    return TokenResponse(access_token=issuer.issue(principal, now=_now(), ttl=ttl), expires_in=int(ttl.total_seconds()))


@router.put("/users/{user_id}", summary="Create or update a user (staff or client contact)")
async def put_user(user_id: UUID, body: UserInput, request: Request, principal: UserAdmin) -> CatalogEvent:  # type: ignore[valid-type]
    _path_matches(body, "user_id", user_id)
    return await _save(request, principal, UserState, body)


@router.post("/users/{user_id}/api-keys", summary="Issue an API key for a user (shown once)")
async def user_key(user_id: UUID, request: Request, principal: UserAdmin) -> IssuedKey:
    try:
        key = await use_cases.mint_api_key(
            _pool(request), tenant_id=principal.tenant_id, user_id=user_id, actor=principal.actor, at=_now()
        )
    except use_cases.UnknownUser as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return IssuedKey(user_id=user_id, api_key=str(key))


# -- catalog entities -------------------------------------------------------------------------------------
@router.put("/companies/{company_id}", summary="Create or update a client")
async def put_company(company_id: UUID, body: CompanyInput, request: Request, principal: Writer) -> CatalogEvent:  # type: ignore[valid-type]
    _path_matches(body, "company_id", company_id)
    return await _save(request, principal, CompanyState, body)


@router.put("/services/{service_id}", summary="Create or update a service")
async def put_service(service_id: UUID, body: ServiceInput, request: Request, principal: Writer) -> CatalogEvent:  # type: ignore[valid-type]
    _path_matches(body, "service_id", service_id)
    return await _save(request, principal, ServiceState, body)


@router.put("/plans/{plan_id}", summary="Create or update a plan")
async def put_plan(plan_id: UUID, body: PlanInput, request: Request, principal: Writer) -> CatalogEvent:  # type: ignore[valid-type]
    _path_matches(body, "plan_id", plan_id)
    return await _save(request, principal, PlanState, body)


@router.put("/assignments/{assignment_id}", summary="Assign a plan to a client")
async def put_assignment(
    assignment_id: UUID,
    body: AssignmentInput,  # type: ignore[valid-type]
    request: Request,
    principal: Writer,
) -> CatalogEvent:
    _path_matches(body, "assignment_id", assignment_id)
    return await _save(request, principal, AssignmentState, body)


_READABLE = {
    "companies": "company_id",
    "services": "service_id",
    "plans": "plan_id",
    "assignments": "assignment_id",
    "users": "user_id",
}


@router.get("/{collection}/{entity_id}", summary="Read one client, service, plan, assignment or user")
async def get_entity(collection: str, entity_id: UUID, request: Request, principal: Reader) -> dict[str, Any]:
    if collection not in _READABLE:
        raise HTTPException(status_code=404, detail=f"no collection {collection!r}")
    found = await use_cases.read_entity(
        _pool(request),
        tenant_id=principal.tenant_id,
        table=collection,
        id_col=_READABLE[collection],
        entity_id=entity_id,
    )
    if found is None:
        raise HTTPException(status_code=404, detail=f"{collection} {entity_id} not found")
    result: dict[str, Any] = found.model_dump(mode="json")
    return result


@router.get("/{collection}", summary="List clients, services, plans, assignments or users (keyset pages)")
async def list_entities(
    collection: str,
    request: Request,
    principal: Reader,
    after: Annotated[UUID | None, Query(description="Cursor: the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    if collection not in _READABLE:
        raise HTTPException(status_code=404, detail=f"no collection {collection!r}")
    items = await use_cases.list_entities(
        _pool(request),
        tenant_id=principal.tenant_id,
        table=collection,
        id_col=_READABLE[collection],
        after=after,
        limit=limit,
    )
    docs = [i.model_dump(mode="json") for i in items]
    return {"items": docs, "next_after": docs[-1][_READABLE[collection]] if len(docs) == limit else None}


# -- the billing clock ------------------------------------------------------------------------------------
@router.post(
    "/test-clock/advance",
    summary="Advance the caller's sandbox tenant's test clock",
    description="Waits until every consumer group has caught up with everything published before, "
    "then publishes the tick. 409 if the tenant is live or the time is not later than the clock.",
)
async def advance_clock(body: AdvanceClock, request: Request, principal: ClockAdvancer) -> ClockAdvanced:
    lag: ConsumerLagProbe = request.app.state.lag_probe
    try:
        tick, waited = await use_cases.advance_test_clock(
            _pool(request),
            lag,
            tenant_id=principal.tenant_id,
            to=body.to,
            actor=principal.actor,
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
        tenant_id=principal.tenant_id, previous=tick.previous, now=tick.now, waited_for_consumers_s=round(waited, 3)
    )
