"""Notification's HTTP API and message handlers: translate, call a use case, translate back.

The tenant and the caller come from the bearer token. Staff with ``notifications:manage`` change settings,
endpoints, templates and anyone's preferences; with ``notifications:preferences`` a staff user changes their
own, and a client contact those of their client (its billing address and its contacts).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, ValidationError

from services.notification import use_cases
from services.notification.adapters.invoicing import NotAnInvoiceEvent, invoice_event_of, overdue_notice_of
from services.notification.adapters.secrets_box import NotConfigured
from services.notification.adapters.targets import BlockedTarget, OutboundPolicy
from services.notification.domain import templates as tpl
from services.notification.domain.rules import Channel, NotificationType
from shared.auth import Permission, Principal, requires
from shared.contracts.approvals import ApprovalPending
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.rating import ThresholdCrossed
from shared.messaging.consumer import BatchConsumer, Reject
from shared.messaging.decoding import Undecodable, loads
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

# -- consumers -----------------------------------------------------------------------------------------------


def parse_lifecycle(env: Envelope) -> tuple[UUID, use_cases.Lifecycle]:
    try:
        raw = loads(env.value)
    except Undecodable as exc:
        raise Reject(exc.reason, error_class=exc.code) from exc
    if not isinstance(raw, dict):
        raise Reject("payload must be a JSON object", error_class="validation_error")
    wrapped = raw.get("event")
    inner: dict[str, Any] = wrapped if isinstance(wrapped, dict) else raw
    try:
        hint: UUID | None = UUID(str(inner.get("tenant_id")))
    except ValueError:
        hint = None
    try:
        event, pdf, filename = invoice_event_of(raw)
        overdue = overdue_notice_of(raw)
    except NotAnInvoiceEvent as exc:
        raise Reject(str(exc), error_class="validation_error", field=exc.field, tenant_id=hint) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise Reject(f"{field}: {first['msg']}", error_class="validation_error", field=field, tenant_id=hint) from exc
    tenant_id = event.tenant_id if event is not None else hint
    if tenant_id is None:
        raise Reject("tenant_id: missing or not a UUID", error_class="validation_error", field="tenant_id")
    return tenant_id, use_cases.Lifecycle(event, pdf, filename, overdue)


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


def parse_threshold(env: Envelope) -> tuple[UUID, ThresholdCrossed]:
    return parse_contract(env, ThresholdCrossed)


def parse_pending(env: Envelope) -> tuple[UUID, ApprovalPending]:
    return parse_contract(env, ApprovalPending)


_S = "notification"
INVOICES = BatchConsumer(service=_S, consumer="invoices", parse=parse_lifecycle, apply=use_cases.take_invoice_events)
THRESHOLDS = BatchConsumer(service=_S, consumer="thresholds", parse=parse_threshold, apply=use_cases.take_thresholds)
APPROVALS = BatchConsumer(service=_S, consumer="approvals", parse=parse_pending, apply=use_cases.take_pending_approvals)
CATALOG = BatchConsumer(service=_S, consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
CLOCK = BatchConsumer(service=_S, consumer="clock", parse=parse_tick, apply=use_cases.apply_ticks)

# -- HTTP ----------------------------------------------------------------------------------------------------

Manager = Annotated[Principal, Depends(requires(Permission.NOTIFICATIONS_MANAGE))]
PreferenceEditor = Annotated[Principal, Depends(requires(Permission.NOTIFICATION_PREFERENCES))]

router = APIRouter(prefix="/v1")


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a person changed something (audit metadata); sending is timed on billing ticks.
    return datetime.now(UTC)


def _caller(p: Principal) -> use_cases.Caller:
    return use_cases.Caller(
        user_id=p.user_id,
        actor=p.actor,
        manages=p.may(Permission.NOTIFICATIONS_MANAGE),
        company_id=p.company_id,
    )


# -- preferences ---------------------------------------------------------------------------------------------


class Choice(BaseModel):
    notification_type: NotificationType = Field(description="What kind of notification", examples=["invoice_issued"])
    channel: Channel = Field(description="email, sms or webhook", examples=["sms"])
    enabled: bool = Field(description="Opt in (true) or out (false)", examples=[True])


class PreferencesInput(BaseModel):
    preferences: list[Choice] = Field(default_factory=list, description="The choices to change; others stay")
    phone: str | None = Field(
        default=None,
        pattern=r"^\+[1-9]\d{6,14}$",
        description="E.164 number for SMS (omit to keep, null to remove)",
        examples=["+447700900123"],
    )


class PreferenceOut(BaseModel):
    notification_type: NotificationType
    channel: Channel
    enabled: bool
    default: bool = Field(description="True when no choice was made (the default applies)")


class PreferencesOut(BaseModel):
    recipient_id: UUID = Field(description="A user id, or a client's company id for its billing address")
    recipient_kind: str = Field(description="company (billing address), contact or staff")
    company_id: UUID | None
    email: str | None
    phone: str | None
    preferences: list[PreferenceOut]


def _raise(exc: Exception) -> None:
    if isinstance(exc, use_cases.NotFound):
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    if isinstance(exc, use_cases.Forbidden):
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    raise exc


@router.get(
    "/notification-preferences/{recipient_id}",
    summary="A recipient's preferences: every type and channel, on or off, and whether by default",
    tags=["preferences"],
)
async def get_preferences(recipient_id: UUID, request: Request, principal: PreferenceEditor) -> PreferencesOut:
    try:
        doc = await use_cases.preferences(
            _pool(request), tenant_id=principal.tenant_id, caller=_caller(principal), recipient_id=recipient_id
        )
    except (use_cases.NotFound, use_cases.Forbidden) as exc:
        _raise(exc)
        raise
    return PreferencesOut.model_validate(doc)


@router.put(
    "/notification-preferences/{recipient_id}",
    summary="Opt types in or out of channels for a recipient (audited)",
    tags=["preferences"],
    description="A client contact may change their client's billing address and its contacts; a staff user "
    "their own; notifications:manage anyone's. 403 otherwise, 404 for an unknown recipient.",
)
async def put_preferences(
    recipient_id: UUID, body: PreferencesInput, request: Request, principal: PreferenceEditor
) -> PreferencesOut:
    choices = {(c.notification_type, c.channel): c.enabled for c in body.preferences}
    try:
        doc = await use_cases.update_preferences(
            _pool(request),
            tenant_id=principal.tenant_id,
            caller=_caller(principal),
            recipient_id=recipient_id,
            choices=choices,
            phone=body.phone,
            phone_given="phone" in body.model_fields_set,
            at=_now(),
        )
    except (use_cases.NotFound, use_cases.Forbidden) as exc:
        _raise(exc)
        raise
    return PreferencesOut.model_validate(doc)


# -- settings ------------------------------------------------------------------------------------------------


async def _target(check: Awaitable[None], field: str) -> None:
    """A 422 naming the field when the target is not one notification may connect to (SSRF, issue 17)."""
    try:
        await check
    except BlockedTarget as exc:
        raise HTTPException(status_code=422, detail=[{"loc": ["body", field], "msg": str(exc)}]) from exc


class SettingsInput(BaseModel):
    smtp_host: str | None = Field(default=None, min_length=1, examples=["smtp.northwind.example"])
    smtp_port: int | None = Field(default=None, ge=1, le=65535, examples=[587])
    smtp_from: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", examples=["billing@northwind.example"])
    smtp_from_name: str | None = Field(default=None, examples=["Northwind IT billing"])
    smtp_starttls: bool | None = Field(default=None, examples=[True])
    smtp_username: str | None = Field(default=None, examples=["billing"])
    smtp_password: str | None = Field(default=None, description="Write-only", examples=["s3cret"])
    sms_url: str | None = Field(default=None, pattern=r"^https?://", examples=["https://sms.example/v1/messages"])
    sms_token: str | None = Field(default=None, description="Write-only bearer token for the gateway")
    sms_sender: str | None = Field(default=None, examples=["Northwind"])
    reminder_offsets: list[Annotated[int, Field(ge=-365, le=365)]] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Days relative to the due date a reminder goes (negative: before)",
        examples=[[-7, 0, 7, 14]],
    )
    renewal_notice_days: int | None = Field(default=None, ge=1, le=365, examples=[30])


class SettingsOut(BaseModel):
    smtp_host: str | None
    smtp_port: int | None
    smtp_from: str | None
    smtp_from_name: str | None
    smtp_starttls: bool
    smtp_username: str | None
    smtp_password_set: bool
    sms_url: str | None
    sms_token_set: bool
    sms_sender: str | None
    reminder_offsets: list[int]
    renewal_notice_days: int


@router.get("/notification-settings", summary="The tenant's sender, gateway and schedule", tags=["settings"])
async def get_settings(request: Request, principal: Manager) -> SettingsOut:
    return SettingsOut.model_validate(await use_cases.get_settings(_pool(request), tenant_id=principal.tenant_id))


@router.put(
    "/notification-settings",
    summary="Change the fields given: SMTP sender, SMS gateway, reminder schedule, renewal notice (audited)",
    tags=["settings"],
)
async def put_settings(body: SettingsInput, request: Request, principal: Manager) -> SettingsOut:
    changes = {k: v for k, v in body.model_dump().items() if k in body.model_fields_set}
    policy: OutboundPolicy = request.app.state.outbound_policy
    if changes.get("smtp_host"):
        await _target(policy.check_host(changes["smtp_host"]), "smtp_host")
    if changes.get("sms_url"):
        await _target(policy.check_url(changes["sms_url"]), "sms_url")
    for field in ("smtp_starttls", "reminder_offsets", "renewal_notice_days"):
        if field in changes and changes[field] is None:
            raise HTTPException(status_code=422, detail=[{"loc": ["body", field], "msg": "may not be null"}])
    try:
        doc = await use_cases.update_settings(
            _pool(request), tenant_id=principal.tenant_id, changes=changes, actor=principal.actor, at=_now()
        )
    except NotConfigured as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return SettingsOut.model_validate(doc)


class EndpointInput(BaseModel):
    url: str = Field(pattern=r"^https?://", description="Where events are POSTed", examples=["https://hooks.example/x"])
    secret: str = Field(min_length=16, description="HMAC-SHA256 key (write-only)", examples=["whsec_0123456789abcdef"])
    company_id: UUID | None = Field(
        default=None, description="The client whose notifications it receives; null for the MSP's own (staff)"
    )
    types: list[NotificationType] = Field(default_factory=list, description="Types it receives (empty: all)")
    active: bool = Field(default=True, examples=[True])


class EndpointOut(BaseModel):
    endpoint_id: UUID
    url: str
    company_id: UUID | None
    types: list[str]
    active: bool


@router.get("/webhook-endpoints", summary="The tenant's webhook endpoints (secrets not shown)", tags=["settings"])
async def list_endpoints(request: Request, principal: Manager) -> list[EndpointOut]:
    rows = await use_cases.endpoints(_pool(request), tenant_id=principal.tenant_id)
    return [EndpointOut.model_validate(r) for r in rows]


@router.put(
    "/webhook-endpoints/{endpoint_id}",
    summary="Create or change a webhook endpoint and its signing secret (audited)",
    tags=["settings"],
    description="Each call is signed: header X-Signature `t=<unix>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>`; "
    "X-Notification-Id repeats on retries.",
)
async def put_endpoint(endpoint_id: UUID, body: EndpointInput, request: Request, principal: Manager) -> EndpointOut:
    policy: OutboundPolicy = request.app.state.outbound_policy
    await _target(policy.check_url(body.url), "url")
    endpoint = body.model_dump() | {"endpoint_id": endpoint_id, "types": [t.value for t in body.types]}
    try:
        saved = await use_cases.save_endpoint(
            _pool(request), tenant_id=principal.tenant_id, endpoint=endpoint, actor=principal.actor, at=_now()
        )
    except NotConfigured as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return EndpointOut.model_validate(saved)


class TemplateInput(BaseModel):
    subject: str = Field(default="", max_length=500, description="Jinja2; emails and webhook titles")
    body: str = Field(min_length=1, max_length=50_000, description="Jinja2; email bodies are HTML (autoescaped)")


class TemplateOut(BaseModel):
    notification_type: NotificationType
    channel: Channel
    subject: str
    body: str
    default: bool
    variables: list[str] = Field(description="Names the template may use")


@router.get(
    "/notification-templates", summary="Every template in force (the tenant's or the default)", tags=["templates"]
)
async def list_templates(request: Request, principal: Manager) -> list[TemplateOut]:
    return [
        TemplateOut.model_validate(t) for t in await use_cases.templates(_pool(request), tenant_id=principal.tenant_id)
    ]


@router.put(
    "/notification-templates/{notification_type}/{channel}",
    summary="Set the tenant's template for a type and channel (checked, audited)",
    tags=["templates"],
)
async def put_template(
    notification_type: NotificationType, channel: Channel, body: TemplateInput, request: Request, principal: Manager
) -> dict[str, bool]:
    try:
        changed = await use_cases.save_template(
            _pool(request),
            tenant_id=principal.tenant_id,
            kind=notification_type,
            channel=channel,
            template=tpl.Template(body.subject, body.body),
            actor=principal.actor,
            at=_now(),
        )
    except tpl.TemplateInvalid as exc:
        raise HTTPException(status_code=422, detail=[{"loc": ["body", exc.field], "msg": exc.message}]) from exc
    return {"changed": changed}


@router.delete(
    "/notification-templates/{notification_type}/{channel}",
    summary="Go back to the default template (audited)",
    tags=["templates"],
)
async def delete_template(
    notification_type: NotificationType, channel: Channel, request: Request, principal: Manager
) -> dict[str, bool]:
    changed = await use_cases.save_template(
        _pool(request),
        tenant_id=principal.tenant_id,
        kind=notification_type,
        channel=channel,
        template=None,
        actor=principal.actor,
        at=_now(),
    )
    return {"changed": changed}


# -- records -------------------------------------------------------------------------------------------------


class NotificationOut(BaseModel):
    notification_id: UUID
    event_id: str = Field(description="What triggered it (event id, or reminder:/renewal: key)")
    notification_type: NotificationType
    channel: Channel
    recipient_id: UUID
    recipient_kind: str
    company_id: UUID | None
    address: str = Field(description="Email address, phone number or webhook URL")
    endpoint_id: UUID | None
    subject: str
    status: str = Field(description="pending, retrying, sent or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="Billing time of the next retry")
    last_error: str | None
    triggered_at: datetime
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime
    has_attachment: bool


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    outcome: str
    error: str | None


class NotificationDetail(NotificationOut):
    body: str
    attempts_log: list[AttemptOut]


@router.get("/notifications", summary="Notification records, oldest first (contacts: their client's)", tags=["records"])
async def list_notifications(
    request: Request,
    principal: PreferenceEditor,
    recipient_id: UUID | None = None,
    company_id: UUID | None = None,
    notification_type: NotificationType | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|retrying|sent|failed|suppressed|bounced)$")] = None,
    event_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[NotificationOut]:
    caller = _caller(principal)
    if not caller.manages:
        if caller.company_id is not None:
            company_id = caller.company_id
        else:
            recipient_id = caller.user_id
    rows = await use_cases.listing(
        _pool(request),
        tenant_id=principal.tenant_id,
        recipient_id=recipient_id,
        company_id=company_id,
        kind=notification_type.value if notification_type else None,
        status=status,
        event_id=event_id,
        limit=limit,
    )
    return [NotificationOut.model_validate(r) for r in rows]


@router.get("/notifications/{notification_id}", summary="One notification with its delivery log", tags=["records"])
async def get_notification(notification_id: UUID, request: Request, principal: Manager) -> NotificationDetail:
    try:
        found, attempts = await use_cases.one(
            _pool(request), tenant_id=principal.tenant_id, notification_id=notification_id
        )
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    doc: dict[str, Any] = found | {"attempts_log": attempts}
    return NotificationDetail.model_validate(doc)


# -- bounces and unsubscribe links ---------------------------------------------------------------------------


class BounceInput(BaseModel):
    address: str = Field(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="The address that bounced",
        examples=["ap@acme.example"],
    )
    kind: Literal["hard", "soft"] = Field(
        description="hard (permanent: the address is suppressed) or soft (temporary: recorded)", examples=["hard"]
    )
    reason: str = Field(min_length=1, max_length=1000, description="The MTA / ESP's diagnostic", examples=["550 5.1.1"])
    notification_id: UUID | None = Field(
        default=None,
        description="The notification that bounced (the X-Notification-Id header of the message), if known",
        examples=["7c9e6679-7425-40de-944b-e07fc1f90ae7"],
    )
    report_id: str | None = Field(
        default=None,
        max_length=200,
        description="The ESP's id of the report: a repeated report with it changes nothing",
        examples=["esp-evt-123"],
    )


class BounceOut(BaseModel):
    bounce_id: UUID
    address: str
    kind: str
    recorded: bool = Field(description="False for a repeated report")
    suppressed: bool = Field(description="Whether emails to the address are now suppressed")
    bounces: list[dict[str, Any]] = Field(description="Every bounce reported for the address")


@router.post(
    "/bounces",
    summary="An MTA / ESP bounce webhook: a hard bounce suppresses the address, a soft one is recorded (audited)",
    tags=["bounces"],
)
async def post_bounce(body: BounceInput, request: Request, principal: Manager) -> BounceOut:
    doc = await use_cases.report_bounce(
        _pool(request),
        tenant_id=principal.tenant_id,
        address=body.address,
        kind=body.kind,
        reason=body.reason,
        notification_id=body.notification_id,
        report_id=body.report_id,
        actor=principal.actor,
        at=_now(),
    )
    return BounceOut.model_validate(doc)


async def _unsubscribe(request: Request, tenant: UUID, recipient: UUID, kind: str, sig: str) -> dict[str, Any]:
    try:
        notification_type = NotificationType(kind)
        return await use_cases.unsubscribe(
            _pool(request), tenant_id=tenant, recipient_id=recipient, kind=notification_type, sig=sig, at=_now()
        )
    except (ValueError, use_cases.BadSignature) as exc:
        raise HTTPException(status_code=403, detail="this unsubscribe link is not valid") from exc
    except use_cases.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


_UNSUBSCRIBE = (
    "The link in every client-facing email except invoices (signed per recipient and type, no token): opts the "
    "recipient out of that type on every channel, audited. 403 for a link whose signature does not match."
)


@router.get("/unsubscribe", summary="Unsubscribe link opened", tags=["unsubscribe"], description=_UNSUBSCRIBE)
async def get_unsubscribe(request: Request, tenant: UUID, recipient: UUID, type: str, sig: str) -> dict[str, Any]:
    return await _unsubscribe(request, tenant, recipient, type, sig)


@router.post(
    "/unsubscribe",
    summary="One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)",
    tags=["unsubscribe"],
    description=_UNSUBSCRIBE,
)
async def post_unsubscribe(request: Request, tenant: UUID, recipient: UUID, type: str, sig: str) -> dict[str, Any]:
    return await _unsubscribe(request, tenant, recipient, type, sig)
