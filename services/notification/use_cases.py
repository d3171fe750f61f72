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
from html import escape
from typing import Any
from urllib.parse import urlencode
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
from shared import audit, principals, topics
from shared.contracts.approvals import ApprovalPending
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import InvoiceEvent, InvoiceEventType
from shared.contracts.invoicing import InvoiceNotice
from shared.contracts.notification import DeliveryOutcome, DeliveryStatus
from shared.contracts.rating import ThresholdCrossed
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed
from shared.periods import local_date

log = structlog.get_logger(__name__)


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """An invoicing.lifecycle.v1 message as `adapters.invoicing.invoice_event_of` read it."""

    event: InvoiceEvent | None  # None for a lifecycle step with nothing to send (sent, viewed…)
    pdf: bytes | None
    filename: str | None
    overdue: InvoiceNotice | None = None  # invoicing's invoice.overdue notice


@dataclass(frozen=True, slots=True)
class Links:
    """Where recipients reach the service (the base of unsubscribe links); set by the composition root."""

    base_url: str = "http://127.0.0.1:8107"


LINKS = Links()


def configure_links(base_url: str) -> None:
    global LINKS
    LINKS = Links(base_url.rstrip("/"))


def unsubscribe_url(secret: str, tenant_id: UUID, recipient_id: UUID, kind: NotificationType) -> str:
    query = urlencode(
        {
            "tenant": str(tenant_id),
            "recipient": str(recipient_id),
            "type": kind.value,
            "sig": rules.unsubscribe_signature(secret, tenant_id, recipient_id, kind),
        }
    )
    return f"{LINKS.base_url}/v1/unsubscribe?{query}"


def _with_unsubscribe_footer(html: str, url: str, kind: NotificationType) -> str:
    label = kind.value.replace("_", " ")
    return (
        f'{html}<p style="font-size:12px;color:#666">You receive these {escape(label)} emails by your notification '
        f'preferences. <a href="{escape(url)}">Unsubscribe</a></p>'
    )


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
    link_key = (
        await repo.link_key(tenant_id) if any(rules.unsubscribable(d.recipient, kind, d.channel) for d in dests) else ""
    )
    items: list[NewNotification] = []
    for d in dests:
        nid = rules.notification_id(event_id, d)
        ctx = context | {"recipient_name": d.recipient.name}
        template = overrides.get((kind, d.channel)) or tpl.default_template(kind, d.channel)
        rendered = tpl.render(template, d.channel, ctx)
        unsubscribe = (
            unsubscribe_url(link_key, tenant_id, d.recipient.recipient_id, kind)
            if rules.unsubscribable(d.recipient, kind, d.channel)
            else None
        )
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
        if unsubscribe is not None:  # appended after the tenant's template, so no template can drop it
            body = _with_unsubscribe_footer(body, unsubscribe, kind)
            payload = payload | {"unsubscribe_url": unsubscribe}
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
    never = [n for n in items if n.status == "failed" and n.notification_id in new]
    if never:  # wanted on a channel that cannot be used (no phone, no endpoint): failed without an attempt
        livemode = await repo.livemode()
        for n in never:
            row = {
                "tenant_id": tenant_id,
                "notification_id": n.notification_id,
                "notification_type": n.kind.value,
                "channel": n.channel.value,
                "event_id": n.event_id,
                "recipient_id": n.recipient.recipient_id,
                "recipient_kind": n.recipient.kind.value,
                "company_id": n.recipient.company_id,
                "address": n.address,
                "payload": {"data": context},
            }
            _publish_outcome(
                uow, row, DeliveryStatus.FAILED, attempt=0, error=n.error, at=triggered_at, livemode=livemode
            )
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
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
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
        if item.body.overdue is not None:
            await _overdue(uow, repo, item.body.overdue)
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


async def _overdue(uow: UnitOfWork, repo: NotificationRepository, notice: InvoiceNotice) -> None:
    """Invoicing says the invoice is overdue: an `overdue` notification by the recipients' preferences, unless
    the invoice already got a reminder or overdue message that tenant-local day (`rules.already_told_today`).
    The notice counts as the reminder stage of its day (days past the due date), so the schedule never sends
    that stage again. An invoice notification never saw finalized (it comes first on the same topic and key)
    has no due date or recipients to go on: nothing is sent."""
    tenant_id = uow.require_tenant()
    inv = await repo.invoice(notice.invoice_id)
    if inv is None or inv.status in rules.CLOSED_INVOICE_STATUSES:
        log.info("overdue_notice_ignored", invoice_id=str(notice.invoice_id), known=inv is not None)
        return
    tz = (await repo.tenant()).timezone
    today = local_date(notice.occurred_at, tz=tz)
    offset = rules.overdue_notice_offset(due_date=inv.due_date, day=today)
    await repo.lock_reminders(inv.invoice_id)
    told = rules.already_told_today([local_date(at, tz=tz) for at in await repo.stages_sent_at(inv.invoice_id)], today)
    outcome = "skipped" if told else "sent"
    if not await repo.mark_stage(tenant_id, inv.invoice_id, offset, outcome, notice.occurred_at) or told:
        return
    company_id = inv.company_id or notice.company_id
    recipients = await _client_recipients(
        repo, company_id, name=str(inv.context.get("customer", "")), billing_email=inv.billing_email
    )
    context = inv.context | {
        "offset_days": offset,
        "days_overdue": max(offset, 0),
        "amount_due": str(notice.amount_due) if notice.amount_due is not None else inv.context.get("amount_due"),
    }
    await _record(
        uow,
        repo,
        event_id=str(notice.notice_id),
        kind=NotificationType.OVERDUE,
        recipients=recipients,
        context=context,
        triggered_at=notice.occurred_at,
    )


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
        await repo.lock_reminders(inv.invoice_id)
        today = local_date(now, tz=timezone)
        sent_days = [local_date(at, tz=timezone) for at in await repo.stages_sent_at(inv.invoice_id)]
        told = rules.already_told_today(sent_days, today)  # e.g. invoicing's overdue notice came first today
        marks = [(inv.invoice_id, o, "skipped", now) for o in plan.skip]
        marks.append((inv.invoice_id, plan.send, "skipped" if told else "sent", now))
        await repo.mark_stages(tenant_id, marks)
        if told:
            continue
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
    """Send what is ready, each in its tenant's transaction holding the row, record the attempt and publish
    its outcome. An email to an address that hard-bounced is not sent: it is recorded `suppressed`."""
    async with pool.acquire() as conn:
        due = await conn.fetch("SELECT * FROM deliveries_due($1)", limit)
    sent = 0
    for row in due:
        async with unit_of_work(pool, tenant_id=row["tenant_id"]) as uow:
            repo = NotificationRepository(uow.conn)
            n = await repo.claim(row["notification_id"])
            if n is None:
                continue  # another replica has it, or it was done meanwhile
            wall = datetime.now(UTC)  # the edge: when the message actually left (wall clock)
            suppressed = await repo.suppression(n["address"]) if n["channel"] == Channel.EMAIL.value else None
            if suppressed is not None:
                reason = (
                    f"suppressed: {n['address']} hard-bounced on {suppressed[1].date().isoformat()} ({suppressed[0]})"
                )
                await repo.mark_suppressed(n["notification_id"], reason, wall)
                _publish_outcome(
                    uow,
                    n,
                    DeliveryStatus.SUPPRESSED,
                    attempt=n["attempts"],
                    error=reason,
                    at=wall,
                    livemode=await repo.livemode(),
                )
                continue
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
                at=wall,
                error=error,
                status=status,
                next_attempt_at=next_at,
            )
            _publish_outcome(
                uow,
                n,
                DeliveryStatus(status),
                attempt=attempt,
                error=error,
                at=wall,
                next_attempt_at=next_at,
                livemode=await repo.livemode(),
            )
    return sent


def _publish_outcome(
    uow: UnitOfWork,
    n: dict[str, Any],
    status: DeliveryStatus,
    *,
    attempt: int,
    error: str | None,
    at: datetime,
    livemode: bool,
    next_attempt_at: datetime | None = None,
    outcome_key: str | None = None,
) -> None:
    """One `DeliveryOutcome` on notification.deliveries.v1, in the transaction that records the outcome. Its
    id is derived from the notification and the attempt (or the bounce), so a repeat publishes the same id."""
    data = (n["payload"] or {}).get("data") or {}
    invoice_id = data.get("invoice_id") if isinstance(data, dict) else None
    outcome = DeliveryOutcome(
        outcome_id=uuid.uuid5(n["notification_id"], outcome_key or f"{status.value}:{attempt}"),
        tenant_id=n["tenant_id"],
        notification_id=n["notification_id"],
        status=status,
        notification_type=n["notification_type"],
        channel=n["channel"],
        triggered_by=n["event_id"],
        recipient_id=n["recipient_id"],
        recipient_kind=n["recipient_kind"],
        company_id=n["company_id"],
        address=n["address"],
        invoice_id=UUID(invoice_id) if invoice_id else None,
        attempt=attempt,
        error=error,
        next_attempt_at=next_attempt_at,
        occurred_at=at,
        livemode=livemode,
    )
    uow.publish(
        topic=topics.NOTIFICATION_DELIVERIES.name, key=outcome.key(), message=outcome, message_id=outcome.outcome_id
    )


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
                    unsubscribe_url=(n["payload"] or {}).get("unsubscribe_url"),
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


# -- HTTP: bounces and unsubscribe links ---------------------------------------------------------------------


class BadSignature(PermissionError):
    pass


async def report_bounce(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    address: str,
    kind: str,
    reason: str,
    notification_id: UUID | None,
    report_id: str | None,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    """An MTA / ESP reports a bounce. Hard: the address is suppressed (later emails to it are recorded
    `suppressed`, not sent). Soft: recorded only (the retry schedule handles temporary failures). Either way
    the bounced notification (when named) says so and its outcome is published. A repeated report (the same
    ``report_id``) changes nothing."""
    bounce_id = uuid.uuid5(tenant_id, f"bounce:{report_id}") if report_id else uuid.uuid4()
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        new = await repo.add_bounce(
            tenant_id,
            bounce_id,
            address=address,
            kind=kind,
            reason=reason,
            notification_id=notification_id,
            at=at,
            by=actor,
        )
        if new:
            if kind == "hard":
                await repo.suppress(tenant_id, address, bounce_id, reason, at)
            bounced = (
                await repo.mark_bounced(notification_id, f"{kind} bounce: {reason}", at) if notification_id else None
            )
            if bounced is not None:
                _publish_outcome(
                    uow,
                    bounced,
                    DeliveryStatus.BOUNCED,
                    attempt=bounced["attempts"],
                    error=f"{kind} bounce: {reason}",
                    at=at,
                    livemode=await repo.livemode(),
                    outcome_key=f"bounce:{bounce_id}",
                )
            await audit.record(
                uow,
                actor=actor,
                action="email_bounced",
                entity_type="email_address",
                entity_id=address.lower(),
                at=at,
                after={
                    "bounce_id": str(bounce_id),
                    "kind": kind,
                    "reason": reason,
                    "notification_id": str(notification_id) if notification_id else None,
                    "suppressed": kind == "hard",
                },
            )
        suppressed = await repo.suppression(address)
        return {
            "bounce_id": bounce_id,
            "address": address.lower(),
            "kind": kind,
            "recorded": new,
            "suppressed": suppressed is not None,
            "bounces": await repo.bounces_of(address),
        }


async def unsubscribe(
    pool: asyncpg.Pool, *, tenant_id: UUID, recipient_id: UUID, kind: NotificationType, sig: str, at: datetime
) -> dict[str, Any]:
    """The recipient followed the link in an email: opt them out of that type on every channel, audited. The
    link is its own authority (HMAC over tenant, recipient and type with the tenant's link key)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = NotificationRepository(uow.conn)
        key = await repo.existing_link_key()
        if (
            key is None
            or kind in rules.MANDATORY_TYPES
            or not rules.unsubscribe_valid(key, tenant_id, recipient_id, kind, sig)
        ):
            raise BadSignature("this unsubscribe link is not valid")
        recipient = await repo.recipient(recipient_id)
        if recipient is None:
            raise NotFound(f"no recipient {recipient_id}")
        actor = f"unsubscribe-link:{recipient_id}"
        before = _preferences_doc(recipient, (await repo.choices([recipient_id])).get(recipient_id, {}))
        await repo.save_choices(tenant_id, recipient_id, {(kind, c): False for c in Channel}, actor=actor, at=at)
        after = _preferences_doc(recipient, (await repo.choices([recipient_id])).get(recipient_id, {}))
        await audit.record(
            uow,
            actor=actor,
            action="notification_unsubscribed",
            entity_type="notification_preferences",
            entity_id=recipient_id,
            at=at,
            before=_jsonable(before),
            after=_jsonable(after) | {"unsubscribed_from": kind.value},
        )
        return {"recipient_id": str(recipient_id), "notification_type": kind.value, "unsubscribed": True}
