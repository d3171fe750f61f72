"""Catalog HTTP API: translate requests into use-case calls; no SQL, no arithmetic.

Tenant-scoped routes take the tenant from the caller's bearer token, never from the path or body. Only the
platform operator (``ADMIN_TOKEN``) creates tenants and their first admin credential. The entity routes
(PUT / GET / list / DELETE) are generated for every kind in ``domain/kinds.py``.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from services.catalog import use_cases
from services.catalog.adapters.repository import DuplicateValue
from services.catalog.adapters.throttle import SignInThrottle, Throttled
from services.catalog.domain.clock import ClockError
from services.catalog.domain.credentials import MalformedApiKey, parse_api_key
from services.catalog.domain.discount_approval import PendingApproval
from services.catalog.domain.documents import InvalidDocument, catalog_states, parse_document
from services.catalog.domain.kinds import BY_TYPE, KINDS, Kind
from shared.auth import Permission, Principal, TokenIssuer, may_grant, requires
from shared.clock.lag import ConsumerLagProbe, LagNotSettled
from shared.contracts.approvals import ApprovalDecision, ApprovalRuleSet
from shared.contracts.base import Timestamp
from shared.contracts.catalog import CatalogEvent, ClientStatus, StatusChange, TenantState, UserState
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract


class AdvanceClock(BaseModel):
    to: Timestamp = Field(
        description="The billing time to move the sandbox tenant to", examples=["2026-02-01T00:00:00+00:00"]
    )
    settle: bool = Field(
        default=False,
        description="Also wait, after publishing the tick, until everything it caused is done (periods closed, "
        "charges invoiced, taxes quoted, invoices issued): every consumer group caught up and every service's "
        "outbox relayed. Without it the answer comes once the tick is committed",
        examples=[True],
    )
    settle_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="With settle: the longest to wait for it, in seconds (default and ceiling "
        "CLOCK_ADVANCE_TIMEOUT_S). Not settling in time answers 202 with settled false and what is behind",
        examples=[60],
    )


class Behind(BaseModel):
    consumer_groups: dict[str, int] = Field(
        description="Consumer groups with records still to consume, and how many", examples=[{"invoicing.tax": 1}]
    )
    outboxes: dict[str, int | None] = Field(
        description="Services with committed outbox rows not yet relayed to Kafka, and how many (null: the "
        "service's count could not be read)",
        examples=[{"tax_currency": 1}],
    )


class ClockAdvanced(BaseModel):
    tenant_id: UUID
    previous: datetime | None
    now: datetime
    waited_for_consumers_s: float = Field(description="How long the advance waited before publishing the tick")
    settled: bool | None = Field(
        default=None, description="With settle: whether the tick's work was all done in time; null without settle"
    )
    settled_after_s: float | None = Field(
        default=None, description="With settle, once settled: seconds from the tick to settled"
    )
    behind: Behind | None = Field(default=None, description="With settle, when not settled in time: what is behind")


class ClockNow(BaseModel):
    tenant_id: UUID
    mode: str = Field(description="The tenant's mode: sandbox (test clock) or live (wall clock)", examples=["sandbox"])
    clock: str | None = Field(description="test, wall, or null before a sandbox's first advance", examples=["test"])
    now: datetime | None = Field(description="The tenant's billing time (null before a sandbox's first advance)")
    settled: bool = Field(
        description="Whether the platform has settled: every consumer group caught up and every outbox relayed, "
        "so everything the tenant's last tick caused is done"
    )
    behind: Behind | None = Field(description="When not settled: what is behind")


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


class Saved(BaseModel):
    changed: bool = Field(description="False when the entity already had exactly this state")
    event: CatalogEvent | None = Field(description="The published catalog event, when something changed")


class Republished(BaseModel):
    entities: int


class PendingItem(BaseModel):
    entity_type: str = Field(description="The kind of entity (discounts are gated today)", examples=["discount"])
    entity_id: UUID = Field(description="Its id, as in the document")
    name: str = Field(description="Its name, as in the document", examples=["Loyalty 30%"])
    approval_status: str = Field(description="Its approval status as saved: pending", examples=["pending"])
    approval_request_id: UUID | None = Field(
        description="The approval request it waits on (GET /v1/approval-items/discount/{id} on approvals)"
    )
    requested_now: bool = Field(
        description="True when this import sent the request; false when it still waits on one sent before "
        "(its terms unchanged)"
    )
    reason: str = Field(
        description="Why it waits, in words: the rule and threshold crossed, that no rules had arrived yet, "
        "or the earlier request",
        examples=["percentage 30 is above the threshold 20 of approval rule d942… (version 1)"],
    )
    rule_id: UUID | None = Field(description="The approval rule crossed (null: no rule named)")
    rule_version: int | None = Field(description="That rule's version")
    threshold_field: str | None = Field(
        description="What the rule compares: percentage or amount", examples=["percentage"]
    )
    threshold: str | None = Field(description="The rule's threshold, crossed when strictly above", examples=["20"])
    currency: str | None = Field(description="The threshold's currency, for an amount rule", examples=[None])


class ImportResult(BaseModel):
    changed: int = Field(description="Entities created or updated")
    unchanged: int = Field(description="Entities already in exactly that state")
    pending_approval: list[PendingItem] = Field(
        default_factory=list,
        description="Every item of the document saved pending approval (so not in effect yet), in document "
        "order, with why. Empty when everything is in effect",
    )


def _operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    expected = f"Bearer {request.app.state.admin_token}"
    if authorization is None or not hmac.compare_digest(authorization, expected):
        raise HTTPException(status_code=401, detail="missing or wrong platform operator token")
    return "platform-operator"


Operator = Annotated[str, Depends(_operator)]
Reader = Annotated[Principal, Depends(requires(Permission.CATALOG_READ))]
UserAdmin = Annotated[Principal, Depends(requires(Permission.USERS_MANAGE))]
ClockAdvancer = Annotated[Principal, Depends(requires(Permission.CLOCK_ADVANCE))]
Writer = Annotated[Principal, Depends(requires(Permission.CATALOG_WRITE))]


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a request arrived (audit metadata); domain code never reads the clock.
    return datetime.now(UTC)


def _location(field: str) -> list[str | int]:
    """``lines.0.service_id`` → ``["body", "lines", 0, "service_id"]``, as FastAPI locates errors."""
    return ["body", *(int(p) if p.isdigit() else p for p in field.split("."))]


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"loc": _location(field), "msg": message}])


def refusal(exc: use_cases.Refused) -> HTTPException:
    status = 409 if any(p.conflict for p in exc.problems) else 422
    return HTTPException(
        status_code=status, detail=[{"loc": ["body", *p.field.split(".")], "msg": p.message} for p in exc.problems]
    )


def _may_write(principal: Principal, states: Sequence[Any], *, where: Callable[[int], list[str | int]]) -> None:
    """Every entity needs its collection's write permission (users: ``users:manage``), whichever route saves it,
    and a user's role may be no higher than the caller's own (`may_grant`)."""
    for i, state in enumerate(states):
        kind = BY_TYPE[state.entity_type]
        if not principal.may(kind.write):
            detail = f"role {principal.role.value!r} may not {kind.write.value} ({kind.collection})"
            raise HTTPException(status_code=403, detail=[{"loc": where(i), "msg": detail}])
        if isinstance(state, UserState) and not may_grant(principal.role, state.role):
            detail = f"role {principal.role.value!r} may not give a user the role {state.role.value!r}"
            raise HTTPException(status_code=403, detail=[{"loc": [*where(i), "role"], "msg": detail}])


async def save(request: Request, principal: Principal, state: Any) -> Saved:
    _may_write(principal, [state], where=lambda _: ["body"])
    try:
        event = await use_cases.save_entity(_pool(request), state=state, actor=principal.actor, at=_now())
    except use_cases.Refused as exc:
        raise refusal(exc) from exc
    except DuplicateValue as exc:
        raise HTTPException(status_code=409, detail=[{"loc": ["body", exc.field], "msg": str(exc)}]) from exc
    return Saved(changed=event is not None, event=event)


def _filters(request: Request, kind: Kind) -> dict[str, Any]:
    """Equality filters from the query string, on the kind's top-level fields (typed as JSON would be)."""
    equals: dict[str, Any] = {}
    for name, value in request.query_params.items():
        if name in ("after", "limit"):
            continue
        if name not in kind.model.model_fields:
            raise HTTPException(
                status_code=422,
                detail=[{"loc": ["query", name], "msg": f"{kind.collection} cannot be filtered by {name}"}],
            )
        equals[name] = _typed(kind, name, value)
    return equals


def _typed(kind: Kind, name: str, value: str) -> Any:
    """A query-string value as the field's JSON value (numbers, booleans, dates…), or 422 on the parameter."""
    field = kind.model.model_fields[name]
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    try:
        return adapter.dump_python(adapter.validate_strings(value), mode="json")
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=[{"loc": ["query", name], "msg": exc.errors()[0]["msg"]}]) from exc


def _entity_routes(router: APIRouter, kind: Kind) -> None:
    fields: dict[str, Any] = {
        n: (f.annotation, f) for n, f in kind.model.model_fields.items() if n != "tenant_id" and n not in kind.derived
    }
    body_model: Any = create_model(f"{kind.model.__name__.removesuffix('State')}Input", **fields)
    writer = Annotated[Principal, Depends(requires(kind.write))]
    noun = kind.entity_type

    async def put(entity_id: UUID, body: body_model, request: Request, principal: writer) -> Saved:
        if getattr(body, kind.id_field) != entity_id:
            raise _unprocessable(kind.id_field, f"must match the {kind.id_field} in the path")
        return await save(request, principal, kind.model(tenant_id=principal.tenant_id, **body.model_dump()))

    async def get(entity_id: UUID, request: Request, principal: Reader) -> dict[str, Any]:
        try:
            found = await use_cases.read_entity(
                _pool(request), tenant_id=principal.tenant_id, kind=kind, entity_id=entity_id
            )
        except use_cases.NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        result: dict[str, Any] = found.model_dump(mode="json")
        return result

    async def listing(
        request: Request,
        principal: Reader,
        after: Annotated[UUID | None, Query(description="Cursor: the last id of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        items = await use_cases.list_entities(
            _pool(request),
            tenant_id=principal.tenant_id,
            kind=kind,
            after=after,
            limit=limit,
            equals=_filters(request, kind),
        )
        docs = [i.model_dump(mode="json") for i in items]
        return {"items": docs, "next_after": docs[-1][kind.id_field] if len(docs) == limit else None}

    async def delete(entity_id: UUID, request: Request, principal: writer) -> CatalogEvent:
        try:
            return await use_cases.delete_entity(
                _pool(request),
                tenant_id=principal.tenant_id,
                kind=kind,
                entity_id=entity_id,
                actor=principal.actor,
                at=_now(),
            )
        except use_cases.NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except use_cases.Refused as exc:
            raise refusal(exc) from exc

    # These handlers are closures over this kind; with postponed annotations FastAPI would look their
    # types up in the module, so the kind-specific ones are set as objects.
    put.__annotations__ |= {"body": body_model, "principal": writer}
    delete.__annotations__ |= {"principal": writer}
    path = f"/{kind.collection}/{{entity_id}}"
    if kind.writable:
        router.add_api_route(
            path, put, methods=["PUT"], summary=f"Create or update a {noun}", name=f"put_{noun}", tags=[kind.collection]
        )
        router.add_api_route(
            path,
            delete,
            methods=["DELETE"],
            summary=f"Delete a {noun} where that is safe",
            name=f"delete_{noun}",
            tags=[kind.collection],
        )
    router.add_api_route(
        path, get, methods=["GET"], summary=f"Read a {noun}", name=f"get_{noun}", tags=[kind.collection]
    )
    router.add_api_route(
        f"/{kind.collection}",
        listing,
        methods=["GET"],
        name=f"list_{kind.collection}",
        summary=f"List {kind.collection}: keyset pages, equality filters on top-level fields",
        tags=[kind.collection],
    )


router = APIRouter(prefix="/v1")
for _kind in KINDS:
    _entity_routes(router, _kind)


# -- platform operator ------------------------------------------------------------------------------------
@router.put("/tenants/{tenant_id}", summary="Create or update a tenant (platform operator)", tags=["tenants"])
async def put_tenant(tenant_id: UUID, body: TenantState, request: Request, actor: Operator) -> CatalogEvent:
    if body.tenant_id != tenant_id:
        raise _unprocessable("tenant_id", "must match the tenant in the path")
    if tenant_id.int == 0:  # metering keeps records it could not read a tenant from under the nil tenant
        raise _unprocessable("tenant_id", "the nil UUID is reserved: it is no tenant's")
    return await use_cases.save_tenant(_pool(request), state=body, actor=actor, at=_now())


@router.post(
    "/tenants/{tenant_id}/admin-keys", summary="Create the tenant's admin and an API key (operator)", tags=["tenants"]
)
async def admin_key(tenant_id: UUID, body: AdminRequest, request: Request, actor: Operator) -> IssuedKey:
    try:
        user, key = await use_cases.bootstrap_admin(
            _pool(request), tenant_id=tenant_id, email=body.email, name=body.name, actor=actor, at=_now()
        )
    except use_cases.UnknownTenant as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return IssuedKey(user_id=user.user_id, api_key=str(key))


# -- credentials ------------------------------------------------------------------------------------------
def _key_id(api_key: str) -> str | None:
    try:
        return parse_api_key(api_key).key_id.hex
    except MalformedApiKey:
        return None


@router.post("/auth/token", summary="Exchange an API key for a short-lived bearer token", tags=["auth"])
async def token(body: TokenRequest, request: Request) -> TokenResponse:
    throttle: SignInThrottle = request.app.state.signin_throttle
    key_id = _key_id(body.api_key)
    try:
        await throttle.attempt(request.client.host if request.client else "unknown")
        if key_id is not None:
            await throttle.check_key(key_id)
    except Throttled as exc:
        raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
    try:
        principal = await use_cases.authenticate(_pool(request), api_key=body.api_key)
    except use_cases.InvalidCredential as exc:
        if key_id is not None:
            await throttle.failed(key_id)
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    issuer: TokenIssuer = request.app.state.token_issuer
    ttl: timedelta = request.app.state.token_ttl
    return TokenResponse(access_token=issuer.issue(principal, now=_now(), ttl=ttl), expires_in=int(ttl.total_seconds()))


@router.post("/users/{user_id}/api-keys", summary="Issue an API key for a user (shown once)", tags=["users"])
async def user_key(user_id: UUID, request: Request, principal: UserAdmin) -> IssuedKey:
    try:
        key = await use_cases.mint_api_key(
            _pool(request), tenant_id=principal.tenant_id, user_id=user_id, actor=principal.actor, at=_now()
        )
    except use_cases.UnknownUser as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return IssuedKey(user_id=user_id, api_key=str(key))


# -- the whole catalog ------------------------------------------------------------------------------------
@router.post("/catalog/republish", summary="Publish every entity again so read models can be rebuilt", tags=["catalog"])
async def republish(request: Request, principal: UserAdmin) -> Republished:
    count = await use_cases.republish(_pool(request), tenant_id=principal.tenant_id, actor=principal.actor, at=_now())
    return Republished(entities=count)


@router.post(
    "/catalog/import",
    summary="Load a whole catalog from a JSON or YAML document (idempotent)",
    tags=["catalog"],
    description="The document maps collections (users, companies, categories, services, bundles, plans, "
    "assignments, discounts) to lists of entities without tenant_id, "
    'e.g. {"services": [{"service_id": …, "code": …}]}. Send JSON, or YAML '
    "with Content-Type application/yaml. Every item is validated first (errors name collection.index.field); "
    "entities are then saved in dependency order, and ones already in exactly that state change nothing. "
    "The answer counts them and lists in pending_approval every item saved pending approval (so not in effect "
    "yet), with the rule and threshold it crossed or the approval request it still waits on.",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "object"}},
            },
            "required": True,
        }
    },
)
async def import_catalog(request: Request, principal: Writer) -> ImportResult:
    try:
        raw = await _bounded_body(request, MAX_IMPORT_BYTES)
        document = parse_document(raw, request.headers.get("content-type", ""))
        states = catalog_states(document, tenant_id=principal.tenant_id)
        if len(states) > MAX_IMPORT_ITEMS:
            raise HTTPException(
                status_code=413, detail=f"a catalog document holds at most {MAX_IMPORT_ITEMS} entities; split it"
            )
    except InvalidDocument as exc:
        raise HTTPException(status_code=422, detail=exc.errors) from exc
    _may_write(principal, states, where=lambda i: ["body", BY_TYPE[states[i].entity_type].collection, i])
    try:
        loaded = await use_cases.load_catalog(
            _pool(request), tenant_id=principal.tenant_id, states=states, actor=principal.actor, at=_now()
        )
    except use_cases.Refused as exc:
        raise refusal(exc) from exc
    except DuplicateValue as exc:
        raise HTTPException(status_code=409, detail=[{"loc": ["body", exc.field], "msg": str(exc)}]) from exc
    return ImportResult(
        changed=loaded.changed,
        unchanged=loaded.unchanged,
        pending_approval=[_pending_item(p) for p in loaded.pending_approval],
    )


MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ITEMS = 20_000
"""Bounds on one catalog import (issue 17: 20 MB or 200,000 rows were read whole, unbounded)."""


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"the document is over {limit} bytes; split it")
        chunks.append(chunk)
    return b"".join(chunks)


def _pending_item(pending: PendingApproval) -> PendingItem:
    d, rule = pending.discount, pending.rule
    return PendingItem(
        entity_type="discount",
        entity_id=d.discount_id,
        name=d.name,
        approval_status=d.approval_status.value,
        approval_request_id=d.approval_request_id,
        requested_now=pending.requested_now,
        reason=pending.reason,
        rule_id=rule.rule_id if rule else None,
        rule_version=rule.version if rule else None,
        threshold_field=rule.threshold_field if rule else None,
        threshold=str(rule.threshold) if rule else None,
        currency=rule.currency if rule else None,
    )


# -- the billing clock ------------------------------------------------------------------------------------
@router.post(
    "/test-clock/advance",
    summary="Advance the caller's sandbox tenant's test clock",
    tags=["clock"],
    description="Waits until the platform has settled (every consumer group caught up with everything "
    "published, every service's outbox relayed), then publishes the tick. 409 if the tenant is live or the "
    "time is not later than the clock; 503 (nothing advanced) if the platform does not settle within "
    'CLOCK_ADVANCE_TIMEOUT_S. With "settle": true it then also waits until everything the tick caused is done '
    "(closing, charging, invoicing, taxes): 200 with settled true, or 202 with settled false and what is "
    "behind when that takes longer than settle_timeout_s (the tick stands; poll GET /v1/test-clock).",
    responses={202: {"description": "The tick is published; its work was not all done within settle_timeout_s"}},
)
async def advance_clock(
    body: AdvanceClock, request: Request, response: Response, principal: ClockAdvancer
) -> ClockAdvanced:
    lag: ConsumerLagProbe = request.app.state.lag_probe
    ceiling: float = request.app.state.advance_timeout_s
    try:
        advanced = await use_cases.advance_test_clock(
            _pool(request),
            lag,
            tenant_id=principal.tenant_id,
            to=body.to,
            actor=principal.actor,
            at=_now(),
            timeout_s=ceiling,
            settle_timeout_s=min(body.settle_timeout_s or ceiling, ceiling) if body.settle else None,
        )
    except use_cases.UnknownTenant as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ClockError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except LagNotSettled as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if advanced.settled is False:
        response.status_code = 202
    tick = advanced.tick
    return ClockAdvanced(
        tenant_id=principal.tenant_id,
        previous=tick.previous,
        now=tick.now,
        waited_for_consumers_s=round(advanced.waited_for_consumers_s, 3),
        settled=advanced.settled,
        settled_after_s=round(advanced.settled_after_s, 3) if advanced.settled_after_s is not None else None,
        behind=Behind(**advanced.behind) if advanced.behind is not None else None,
    )


@router.get(
    "/test-clock",
    summary="The caller's tenant's billing time, and whether the platform has settled since",
    tags=["clock"],
    description="settled is true when every consumer group has caught up and every service's outbox is "
    "relayed, so everything the last tick caused is done (two probes that agree; it takes a moment).",
)
async def get_clock(request: Request, principal: Reader) -> ClockNow:
    lag: ConsumerLagProbe = request.app.state.lag_probe
    try:
        status = await use_cases.clock_status(_pool(request), lag, tenant_id=principal.tenant_id)
    except use_cases.UnknownTenant as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return ClockNow(
        tenant_id=principal.tenant_id,
        mode=status.tenant.mode.value,
        clock=status.mode,
        now=status.now,
        settled=status.behind is None,
        behind=Behind(**status.behind) if status.behind is not None else None,
    )


# -- client status ------------------------------------------------------------------------------------------
class StatusRequest(BaseModel):
    status: ClientStatus = Field(description="active, suspended or cancelled", examples=["suspended"])
    effective_date: date = Field(description="First day the status applies", examples=["2026-02-01"])
    reason: str = Field(min_length=1, description="Why (kept in the history and the audit)", examples=["unpaid"])
    assignment_id: UUID | None = Field(default=None, description="Only this assignment of the client", examples=[None])
    service_id: UUID | None = Field(default=None, description="Only this service of the client", examples=[None])


class StatusChanged(BaseModel):
    event: CatalogEvent = Field(description="The client's status history after the change (client_status)")
    assignments: list[CatalogEvent] = Field(description="Assignments the change ended (or deleted, if not started)")


class ClientServiceOut(BaseModel):
    service_id: UUID
    plan_id: UUID
    assignment_id: UUID
    bundle_id: UUID | None
    status: ClientStatus


@router.post(
    "/companies/{company_id}/status",
    summary="Record a client's, assignment's or service's status (active / suspended / cancelled)",
    tags=["companies"],
    description="Appends to the client's status history (GET /v1/client-statuses/{company_id}). Cancelling the "
    "client or an assignment ends the affected assignments on effective_date; suspension is recorded for "
    "billing to skip; a cancelled assignment cannot be reactivated (assign the plan again).",
)
async def post_status(company_id: UUID, body: StatusRequest, request: Request, principal: Writer) -> StatusChanged:
    if body.assignment_id is not None and body.service_id is not None:
        raise _unprocessable("service_id", "name an assignment or a service, not both")
    at = _now()
    change = StatusChange(change_id=uuid.uuid4(), recorded_at=at, actor=principal.actor, **body.model_dump())
    try:
        event, effects = await use_cases.change_status(
            _pool(request),
            tenant_id=principal.tenant_id,
            company_id=company_id,
            change=change,
            actor=principal.actor,
            at=at,
        )
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except use_cases.Refused as exc:
        raise refusal(exc) from exc
    return StatusChanged(event=event, assignments=effects)


@router.get(
    "/companies/{company_id}/services",
    summary="The services a client has on a day: its active plans' lines, without cancelled services",
    tags=["companies"],
)
async def get_client_services(
    company_id: UUID,
    request: Request,
    principal: Reader,
    on: Annotated[date, Query(description="The day (the tenant's local date)")],
) -> list[ClientServiceOut]:
    try:
        found = await use_cases.active_services(
            _pool(request), tenant_id=principal.tenant_id, company_id=company_id, on=on
        )
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return [ClientServiceOut.model_validate(s, from_attributes=True) for s in found]


# -- messages: approval rules and decisions ---------------------------------------------------------------
def parse_rule_set(env: Envelope) -> tuple[UUID, ApprovalRuleSet]:
    return parse_contract(env, ApprovalRuleSet)


def parse_decision(env: Envelope) -> tuple[UUID, ApprovalDecision]:
    return parse_contract(env, ApprovalDecision)


RULES = BatchConsumer(service="catalog", consumer="rules", parse=parse_rule_set, apply=use_cases.keep_rule_sets)
DECISIONS = BatchConsumer(
    service="catalog", consumer="decisions", parse=parse_decision, apply=use_cases.apply_decisions
)
