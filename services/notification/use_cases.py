"""Notification's use cases: consumers run inside the kernel's batch transaction; HTTP ones open their own.

A triggering event records its notifications (ids = event + recipient + channel) in the transaction that
claims the event in the inbox; the delivery worker sends them after commit and records each attempt. A
redelivered event is stopped by the inbox, and an event seen again under another message id finds its
notification ids already recorded: either way nothing is sent twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.notification.adapters.channels import Channels, DeliveryFailed, Email
from services.notification.adapters.repository import (
    NewNotification,
    NotificationRepository,
    OpenInvoice,
    Settings,
)
from services.notification.domain import rules
from services.notification.domain import templates as tpl
from services.notification.domain.rules import Channel, NotificationType, Recipient, RecipientKind
from shared import audit
from shared.contracts.approvals import ApprovalPending
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import InvoiceEvent, InvoiceEventType
from shared.contracts.rating import ThresholdCrossed
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed

log = structlog.get_logger(__name__)


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """An invoicing.lifecycle.v1 message as `adapters.invoicing.invoice_event_of` read it."""

    event: InvoiceEvent | None  # None for a lifecycle step with nothing to send (sent, viewed, overdue…)
    pdf: bytes | None
    filename: str | None


# -- recording notifications ---------------------------------------------------------------------------------


async def _record(
    uow: UnitOfWork,
    repo: NotificationRepository,
    *,
    event_id: str,
    kind: NotificationType,
    recipients: Sequence[Recipient],
    context: dict[str, Any],
    triggered_at: datetime,
    document_id: UUID | None = None,
) -> int:
    """Record the notifications ``kind`` causes for ``recipients`` by their preferences; returns how many new."""
    tenant_id = uow.require_tenant()
    tenant = await repo.tenant()
    settings = await repo.settings()
    context = {"sender": settings.smtp_from_name or tenant.name} | context
    overrides = await repo.templates()
    choices = await repo.choices([r.recipient_id for r in recipients])
    dests, undeliverable = rules.destinations(recipients, kind, choices, await repo.endpoints())
    items: list[NewNotification] = []
    for d in dests:
        nid = rules.notification_id(event_id, d)
        ctx = context | {"recipient_name": d.recipient.name}
        template = overrides.get((kind, d.channel)) or tpl.default_template(kind, d.channel)
        rendered = tpl.render(template, d.channel, ctx)
        payload = {
            "notification_id": str(nid),
            "type": kind.value,
            "event_id": event_id,
            "tenant_id": str(tenant_id),
            "recipient_id": str(d.recipient.recipient_id),
            "recipient_kind": d.recipient.kind.value,
            "title": rendered.subject,
            "data": context,
        }
        body = json.dumps(payload, sort_keys=True) if d.channel is Channel.WEBHOOK else rendered.body
        items.append(
            NewNotification(
                nid,
                event_id,
                kind,
                d.channel,
                d.recipient,
                d.address,
                d.endpoint_id,
                rendered.subject,
                body,
                payload,
                document_id if d.channel is Channel.EMAIL else None,
                "pending",
                None,
                triggered_at,
            )
        )
    for r, channel, why in undeliverable:
        fake = rules.Destination(r, channel, "")
        nid = rules.notification_id(event_id, fake)
        items.append(
            NewNotification(nid, event_id, kind, channel, r, "", None, "", "", {}, None, "failed", why, triggered_at)
        )
    new = await repo.add_notifications(tenant_id, items)
    return len(new)


async def _client_recipients(
    repo: NotificationRepository, company_id: UUID, *, name: str, billing_email: str | None
) -> list[Recipient]:
    billing = Recipient(
        company_id, RecipientKind.COMPANY, billing_email, await repo.phone(company_id), company_id, name
    )
    return [billing, *await repo.contacts(company_id)]


def _company_key(tenant_id: UUID, company_ref: str) -> UUID:
    """Stands in for a client the catalog read model has not seen (its invoices still reach billing_email)."""
    return uuid.uuid5(tenant_id, f"company:{company_ref}")


# -- consumers -----------------------------------------------------------------------------------------------


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    repo = NotificationRepository(uow.conn)
    for item in items:
        await repo.save_catalog(item.body)
    return []


def _invoice_context(event: InvoiceEvent) -> dict[str, Any]:
    inv = event.invoice
    assert inv is not None
    return {
        "customer": inv.customer.name,
        "company_ref": event.company_ref,
        "invoice_id": str(inv.invoice_id),
        "invoice_number": inv.invoice_number,
        "amount_due": str(inv.amount_due),
        "total": str(inv.total),
        "tax_total": str(inv.tax_total),
        "amount_paid": str(inv.amount_paid),
        "currency": inv.currency,
        "due_date": inv.due_date.isoformat(),
        "issue_date": inv.issue_date.isoformat(),
        "period_start": inv.period_start.isoformat(),
        "period_end": inv.period_end.isoformat(),
    }


async def take_invoice_events(uow: UnitOfWork, items: Sequence[Parsed[Lifecycle]]) -> Rejections[Lifecycle]:
    """Finalized: email the invoice (PDF attached when invoicing sent it) and start its reminders. Paid or
    voided: its reminders stop."""
    repo = NotificationRepository(uow.conn)
    tenant_id = uow.require_tenant()
    for item in items:
        event, pdf, filename = item.body.event, item.body.pdf, item.body.filename
        if event is None:
            continue
        if event.event_type is InvoiceEventType.INVOICE_FINALIZED and event.invoice is not None:
            inv = event.invoice
            found = await repo.company_by_ref(event.company_ref)
            company_id = found[0] if found else _company_key(tenant_id, event.company_ref)
            context = _invoice_context(event)
            await repo.save_invoice(
                tenant_id,
                OpenInvoice(
                    inv.invoice_id,
                    event.company_ref,
                    found[0] if found else None,
                    inv.due_date,
                    inv.status.value,
                    context,
                    inv.customer.billing_email,
                ),
            )
            document_id = None
            if pdf is not None and filename is not None:
                document_id = uuid.uuid5(inv.invoice_id, f"document:{filename}")
                await repo.save_document(tenant_id, document_id, filename, pdf)
            recipients = await _client_recipients(
                repo, company_id, name=inv.customer.name, billing_email=inv.customer.billing_email
            )
            await _record(
                uow,
                repo,
                event_id=str(event.event_id),
                kind=NotificationType.INVOICE_ISSUED,
                recipients=recipients,
                context=context,
                triggered_at=event.occurred_at,
                document_id=document_id,
            )
        elif event.event_type is InvoiceEventType.INVOICE_VOIDED and event.invoice is not None:
            await repo.set_invoice_status(event.invoice.invoice_id, "void")
        elif (
            event.event_type is InvoiceEventType.INVOICE_PAYMENT_RECORDED
            and event.payment is not None
            and event.payment.invoice_status == "paid"
        ):
            await repo.set_invoice_status(event.payment.invoice_id, "paid")
    return []


async def take_thresholds(uow: UnitOfWork, items: Sequence[Parsed[ThresholdCrossed]]) -> Rejections[ThresholdCrossed]:
    repo = NotificationRepository(uow.conn)
    for item in items:
        t = item.body
        company = await repo.company(t.company_id)
        name, billing_email = (company[1], company[2]) if company else (t.company_ref, None)
        what = "your support hours bucket" if t.subject == "bucket" else f"the included {t.unit} quantity"
        context = {
            "customer": name,
            "company_ref": t.company_ref,
            "subject": t.subject,
            "level_percent": format(t.level_percent.normalize(), "f"),
            "limit": str(t.limit),
            "total": str(t.total),
            "unit": t.unit,
            "what": what,
            "period_start": t.period_start.isoformat(),
            "period_end": t.period_end.isoformat(),
        }
        await _record(
            uow,
            repo,
            event_id=str(t.event_id),
            kind=rules.threshold_type(t.subject, t.level_percent),
            recipients=await _client_recipients(repo, t.company_id, name=name, billing_email=billing_email),
            context=context,
            triggered_at=datetime.combine(t.period_start, datetime.min.time(), tzinfo=UTC),
        )
    return []


async def take_pending_approvals(
    uow: UnitOfWork, items: Sequence[Parsed[ApprovalPending]]
) -> Rejections[ApprovalPending]:
    """Tell the active staff whose role the waiting step names, except whoever caused the request."""
    repo = NotificationRepository(uow.conn)
    for item in items:
        p = item.body
        staff = await repo.staff_with_roles(p.roles)
        requester = (p.requested_by or "").removeprefix("user:").lower()
        approvers = [
            r
            for r, ref in staff
            if not requester or requester not in {str(r.recipient_id), (r.email or "").lower(), (ref or "").lower()}
        ]
        context = {
            "summary": p.summary,
            "item_type": p.item_type.value,
            "item_id": p.item_id,
            "company_ref": p.company_ref or "",
            "customer": p.company_ref or "",
            "step": p.step,
            "of_steps": p.of_steps,
            "reason": p.reason.value,
            "due_at": p.due_at.isoformat() if p.due_at else None,
            "requested_by": p.requested_by,
            "request_id": str(p.request_id),
        }
        await _record(
            uow,
            repo,
            event_id=str(p.notice_id),
            kind=NotificationType.APPROVAL_REQUESTED,
            recipients=approvers,
            context=context,
            triggered_at=p.occurred_at,
        )
    return []


async def apply_ticks(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """Billing time moved: retries come due, payment reminders and renewal notices go out."""
    repo = NotificationRepository(uow.conn)
    tenant_id = uow.require_tenant()
    now = max([await repo.advance_clock(tenant_id, i.body.now) for i in items])
    await repo.release_retries(now)
    tenant = await repo.tenant()
    settings = await repo.settings()
    await _remind(uow, repo, settings, now=now, timezone=tenant.timezone)
    await _renewals(uow, repo, settings, now=now, timezone=tenant.timezone)
    return []


async def _remind(
    uow: UnitOfWork, repo: NotificationRepository, settings: Settings, *, now: datetime, timezone: str
) -> None:
    tenant_id = uow.require_tenant()
    earliest = min(settings.reminder_offsets, default=0)
    # An invoice can have a stage due only once now has reached due_date + earliest offset.
    horizon = now.date() - timedelta(days=earliest) + timedelta(days=1)
    invoices = await repo.open_invoices(due_before=horizon)
    done = await repo.stages_done([i.invoice_id for i in invoices])
    for inv in invoices:
        plan = rules.reminders_due(
            due_date=inv.due_date,
            offsets=settings.reminder_offsets,
            done=done.get(inv.invoice_id, set()),
            now=now,
            timezone=timezone,
            status=inv.status,
        )
        if plan.send is None:
            continue
        marks = [(inv.invoice_id, o, "skipped", now) for o in plan.skip] + [(inv.invoice_id, plan.send, "sent", now)]
        await repo.mark_stages(tenant_id, marks)
        company_id = inv.company_id
        if company_id is None:
            found = await repo.company_by_ref(inv.company_ref)
            company_id = found[0] if found else _company_key(tenant_id, inv.company_ref)
        recipients = await _client_recipients(
            repo, company_id, name=str(inv.context.get("customer", "")), billing_email=inv.billing_email
        )
        context = inv.context | {"offset_days": plan.send, "days_overdue": max(plan.send, 0)}
        await _record(
            uow,
            repo,
            event_id=f"reminder:{inv.invoice_id}:{plan.send}",
            kind=rules.reminder_type(plan.send),
            recipients=recipients,
            context=context,
            triggered_at=now,
        )


async def _renewals(
    uow: UnitOfWork, repo: NotificationRepository, settings: Settings, *, now: datetime, timezone: str
) -> None:
    tenant_id = uow.require_tenant()
    horizon = now.date() + timedelta(days=settings.renewal_notice_days + 1)
    for a in await repo.renewing(until=horizon):
        if not rules.renewal_notice_due(
            renewal_date=a.renewal_date,
            end_date=a.end_date,
            notice_days=settings.renewal_notice_days,
            now=now,
            timezone=timezone,
        ):
            continue
        await repo.mark_renewal(tenant_id, a.assignment_id, a.renewal_date, now)
        company = await repo.company(a.company_id)
        name, billing_email = (company[1], company[2]) if company else ("", None)
        await _record(
            uow,
            repo,
            event_id=f"renewal:{a.assignment_id}:{a.renewal_date.isoformat()}",
            kind=NotificationType.UPCOMING_RENEWAL,
            recipients=await _client_recipients(repo, a.company_id, name=name, billing_email=billing_email),
            context={
                "customer": name,
                "company_ref": company[0] if company else "",
                "renewal_date": a.renewal_date.isoformat(),
                "auto_renew": a.auto_renew,
                "plan": a.plan_name,
                "assignment_id": str(a.assignment_id),
            },
            triggered_at=now,
        )


# -- delivery ------------------------------------------------------------------------------------------------


async def deliver_due(pool: asyncpg.Pool, channels: Channels, *, limit: int = 50) -> int:
    """Send what is ready, each in its tenant's transaction holding the row, and record the attempt."""
    async with pool.acquire() as conn:
        due = await conn.fetch("SELECT * FROM deliveries_due($1)", limit)
    sent = 0
    for row in due:
        async with unit_of_work(pool, tenant_id=row["tenant_id"]) as uow:
            repo = NotificationRepository(uow.conn)
            n = await repo.claim(row["notification_id"])
            if n is None:
                continue  # another replica has it, or it was done meanwhile
            error = await _send(repo, channels, n)
            attempt = n["attempts"] + 1
            if error is None:
                status, next_at = "sent", None
                sent += 1
            else:
                status, next_at = rules.next_attempt(attempt, await repo.billing_now())
                log.warning("delivery_failed", notification_id=str(n["notification_id"]), error=error)
            await repo.record_attempt(
                row["tenant_id"],
                n["notification_id"],
                attempt=attempt,
                at=datetime.now(UTC),  # the edge: when the message actually left (wall clock)
                error=error,
                status=status,
                next_attempt_at=next_at,
            )
    return sent


async def _send(repo: NotificationRepository, channels: Channels, n: dict[str, Any]) -> str | None:
    settings = await repo.settings()
    channel = Channel(n["channel"])
    try:
        if channel is Channel.EMAIL:
            if not (settings.smtp_host and settings.smtp_port and settings.smtp_from):
                return "no SMTP sender settings for this tenant (PUT /v1/notification-settings)"
            attachment = await repo.document(n["document_id"]) if n["document_id"] else None
            await channels.email(
                Email(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.smtp_from,
                    sender_name=settings.smtp_from_name,
                    starttls=settings.smtp_starttls,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    to=n["address"],
                    subject=n["subject"],
                    html=n["body"],
                    notification_id=n["notification_id"],
                    attachment=attachment,
                )
            )
        elif channel is Channel.SMS:
            if not settings.sms_url:
                return "no SMS gateway for this tenant (PUT /v1/notification-settings)"
            await channels.sms(
                url=settings.sms_url,
                token=settings.sms_token,
                sender=settings.sms_sender,
                to=n["address"],
                body=n["body"],
                notification_id=n["notification_id"],
            )
        else:
            secret = await repo.endpoint_secret(n["endpoint_id"])
            if secret is None:
                return "the webhook endpoint no longer exists"
            await channels.webhook(
                url=n["address"],
                secret=secret,
                body=n["body"].encode(),
                notification_id=n["notification_id"],
                timestamp=int(datetime.now(UTC).timestamp()),
            )
    except DeliveryFailed as exc:
        return str(exc)
    return None


# -- HTTP: preferences ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: UUID
    actor: str
    manages: bool  # staff with notifications:manage: anyone's preferences
    company_id: UUID | None  # a client contact: their client


def _may_edit(caller: Caller, recipient: Recipient) -> bool:
    if caller.manages:
        return True
    if caller.company_id is not None:
        return recipient.company_id == caller.company_id and recipient.kind is not RecipientKind.STAFF
    return recipient.recipient_id == caller.user_id


async def preferences(pool: asyncpg.Pool, *, tenant_id: UUID, caller: Caller, recipient_id: UUID) -> dict[str, Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound(f"no user or client {recipient_id} known to notification")
        if not _may_edit(caller, recipient):
            raise Forbidden("you may see and change only your own preferences (a contact: their client's)")
        return _preferences_doc(recipient, (await repo.choices([recipient_id])).get(recipient_id, {}))


def _preferences_doc(recipient: Recipient, choices: dict[tuple[NotificationType, Channel], bool]) -> dict[str, Any]:
    allowed = rules.CLIENT_TYPES if recipient.kind is not RecipientKind.STAFF else frozenset(NotificationType)
    return {
        "recipient_id": recipient.recipient_id,
        "recipient_kind": recipient.kind.value,
        "company_id": recipient.company_id,
        "email": recipient.email,
        "phone": recipient.phone,
        "preferences": [
            {
                "notification_type": t.value,
                "channel": c.value,
                "enabled": c in rules.channels_for(recipient, t, choices),
                "default": (t, c) not in choices,
            }
            for t in NotificationType
            if t in allowed
            for c in Channel
        ],
    }


async def update_preferences(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    caller: Caller,
    recipient_id: UUID,
    choices: dict[tuple[NotificationType, Channel], bool],
    phone: str | None,
    phone_given: bool,
    at: datetime,
) -> dict[str, Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound(f"no user or client {recipient_id} known to notification")
        if not _may_edit(caller, recipient):
            raise Forbidden("you may change only your own preferences (a contact: their client's)")
        before = _preferences_doc(recipient, (await repo.choices([recipient_id])).get(recipient_id, {}))
        await repo.save_choices(tenant_id, recipient_id, choices, actor=caller.actor, at=at)
        if phone_given:
            await repo.save_phone(tenant_id, recipient_id, phone)
            recipient = replace(recipient, phone=phone)
        after = _preferences_doc(recipient, (await repo.choices([recipient_id])).get(recipient_id, {}))
        await audit.record(
            uow,
            actor=caller.actor,
            action="notification_preferences_changed",
            entity_type="notification_preferences",
            entity_id=recipient_id,
            at=at,
            before=_jsonable(before),
            after=_jsonable(after),
        )
        return after


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc, default=str))
    return out


# -- HTTP: settings, endpoints, templates --------------------------------------------------------------------


def _settings_doc(s: Settings) -> dict[str, Any]:
    doc = {f: getattr(s, f) for f in Settings.__dataclass_fields__}
    doc["reminder_offsets"] = list(s.reminder_offsets)
    doc["smtp_password_set"] = doc.pop("smtp_password") is not None
    doc["sms_token_set"] = doc.pop("sms_token") is not None
    return doc


async def get_settings(pool: asyncpg.Pool, *, tenant_id: UUID) -> dict[str, Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return _settings_doc(await NotificationRepository(uow.conn).settings())


async def update_settings(
    pool: asyncpg.Pool, *, tenant_id: UUID, changes: dict[str, Any], actor: str, at: datetime
) -> dict[str, Any]:
    """Change the fields given (others keep their value); secrets are never echoed nor audited in clear."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        before = await repo.settings(lock=True)
        if "reminder_offsets" in changes:
            changes["reminder_offsets"] = tuple(sorted(set(changes["reminder_offsets"])))
        after = replace(before, **changes)
        await repo.save_settings(tenant_id, after)
        await audit.record(
            uow,
            actor=actor,
            action="notification_settings_changed",
            entity_type="notification_settings",
            entity_id=tenant_id,
            at=at,
            before=_settings_doc(before),
            after=_settings_doc(after),
        )
        return _settings_doc(after)


async def endpoints(pool: asyncpg.Pool, *, tenant_id: UUID) -> list[dict[str, Any]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await NotificationRepository(uow.conn).endpoint_rows()


async def save_endpoint(
    pool: asyncpg.Pool, *, tenant_id: UUID, endpoint: dict[str, Any], actor: str, at: datetime
) -> dict[str, Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        before = await repo.endpoint(endpoint["endpoint_id"])
        await repo.save_endpoint(tenant_id, endpoint)
        shown = {k: v for k, v in endpoint.items() if k != "secret"}
        await audit.record(
            uow,
            actor=actor,
            action="webhook_endpoint_saved" if before else "webhook_endpoint_created",
            entity_type="webhook_endpoint",
            entity_id=endpoint["endpoint_id"],
            at=at,
            before=_jsonable({k: v for k, v in before.items() if k not in ("secret", "tenant_id")}) if before else None,
            after=_jsonable(shown | {"secret_changed": before is None or before["secret"] != endpoint["secret"]}),
        )
        return shown


async def templates(pool: asyncpg.Pool, *, tenant_id: UUID) -> list[dict[str, Any]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        own = await NotificationRepository(uow.conn).templates()
    out = []
    for t in NotificationType:
        for c in Channel:
            chosen = own.get((t, c))
            template = chosen or tpl.default_template(t, c)
            out.append(
                {
                    "notification_type": t.value,
                    "channel": c.value,
                    "subject": template.subject,
                    "body": template.body,
                    "default": chosen is None,
                    "variables": sorted(tpl.SAMPLE_CONTEXT[t]),
                }
            )
    return out


async def save_template(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    kind: NotificationType,
    channel: Channel,
    template: tpl.Template | None,
    actor: str,
    at: datetime,
) -> bool:
    """Set the tenant's template (None: back to the default); checked against the type's names first."""
    if template is not None:
        tpl.check(template, kind, channel)
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        before = (await repo.templates()).get((kind, channel))
        if template is None:
            changed = await repo.delete_template(kind, channel)
        else:
            await repo.save_template(tenant_id, kind, channel, template)
            changed = True
        await audit.record(
            uow,
            actor=actor,
            action="notification_template_reset" if template is None else "notification_template_saved",
            entity_type="notification_template",
            entity_id=f"{kind.value}/{channel.value}",
            at=at,
            before={"subject": before.subject, "body": before.body} if before else None,
            after={"subject": template.subject, "body": template.body} if template else None,
        )
        return changed


# -- HTTP: records -------------------------------------------------------------------------------------------


async def listing(pool: asyncpg.Pool, *, tenant_id: UUID, **filters: Any) -> list[dict[str, Any]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await NotificationRepository(uow.conn).listing(**filters)


async def one(pool: asyncpg.Pool, *, tenant_id: UUID, notification_id: UUID) -> tuple[dict[str, Any], list[Any]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        found = await repo.one(notification_id)
        if found is None:
            raise NotFound(f"no notification {notification_id}")
        return found, await repo.attempts(notification_id)
