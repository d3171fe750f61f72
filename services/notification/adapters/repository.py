"""Notification's SQL. Every statement runs in the caller's transaction with the tenant set (RLS)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.notification.adapters import secrets_box
from services.notification.domain.rules import (
    DEFAULT_REMINDER_OFFSETS,
    DEFAULT_RENEWAL_NOTICE_DAYS,
    Channel,
    Endpoint,
    NotificationType,
    Recipient,
    RecipientKind,
    add_months,
)
from services.notification.domain.templates import Template
from shared.contracts.catalog import (
    AssignmentState,
    CatalogEvent,
    CompanyState,
    PlanState,
    TenantState,
    UserKind,
    UserState,
)
from shared.db.pool import DbConnection

Choices = dict[tuple[NotificationType, Channel], bool]


@dataclass(frozen=True, slots=True)
class Settings:
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_from: str | None = None
    smtp_from_name: str | None = None
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    sms_url: str | None = None
    sms_token: str | None = None
    sms_sender: str | None = None
    reminder_offsets: tuple[int, ...] = DEFAULT_REMINDER_OFFSETS
    renewal_notice_days: int = DEFAULT_RENEWAL_NOTICE_DAYS


SETTING_FIELDS = tuple(Settings.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class TenantInfo:
    name: str
    timezone: str


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    invoice_id: UUID
    company_ref: str
    company_id: UUID | None
    due_date: date
    status: str
    context: dict[str, Any]
    billing_email: str


@dataclass(frozen=True, slots=True)
class Renewing:
    assignment_id: UUID
    company_id: UUID
    plan_name: str
    end_date: date | None
    renewal_date: date
    auto_renew: bool


@dataclass(frozen=True, slots=True)
class NewNotification:
    notification_id: UUID
    event_id: str
    kind: NotificationType
    channel: Channel
    recipient: Recipient
    address: str
    endpoint_id: UUID | None
    subject: str
    body: str
    payload: dict[str, Any]
    document_id: UUID | None
    status: str  # pending, or failed when it cannot be sent at all
    error: str | None
    triggered_at: datetime


class NotificationRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model and billing time ----------------------------------------------------------------
    async def save_catalog(self, event: CatalogEvent) -> None:
        s, v, alive = event.state, event.version, not event.deleted
        if isinstance(s, TenantState):
            await self._conn.execute(
                """INSERT INTO tenants VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE
                   SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, mode = EXCLUDED.mode,
                       version = EXCLUDED.version WHERE tenants.version < EXCLUDED.version""",
                s.tenant_id,
                s.name,
                s.timezone,
                s.mode.value,
                v,
            )
        elif isinstance(s, CompanyState):
            await self._conn.execute(
                """INSERT INTO companies VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, company_id)
                   DO UPDATE SET company_ref = EXCLUDED.company_ref, name = EXCLUDED.name,
                       billing_email = EXCLUDED.billing_email, active = EXCLUDED.active, version = EXCLUDED.version
                   WHERE companies.version < EXCLUDED.version""",
                s.tenant_id,
                s.company_id,
                s.company_ref,
                s.name,
                s.billing_email,
                alive,
                v,
            )
        elif isinstance(s, UserState):
            await self._conn.execute(
                """INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (tenant_id, user_id) DO UPDATE
                   SET email = EXCLUDED.email, name = EXCLUDED.name, role = EXCLUDED.role, kind = EXCLUDED.kind,
                       company_id = EXCLUDED.company_id, user_ref = EXCLUDED.user_ref, active = EXCLUDED.active,
                       version = EXCLUDED.version
                   WHERE users.version < EXCLUDED.version""",
                s.tenant_id,
                s.user_id,
                s.email,
                s.name,
                s.role.value,
                s.kind.value,
                s.company_id,
                s.user_ref,
                s.active and alive,
                v,
            )
        elif isinstance(s, PlanState):
            await self._conn.execute(
                """INSERT INTO plans VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, plan_id) DO UPDATE
                   SET name = EXCLUDED.name, version = EXCLUDED.version WHERE plans.version < EXCLUDED.version""",
                s.tenant_id,
                s.plan_id,
                s.name,
                v,
            )
        elif isinstance(s, AssignmentState):
            term = s.term
            renewal = None
            if term is not None:
                renewal = term.renewal_date or add_months(s.start_date, term.length_months)
            await self._conn.execute(
                """INSERT INTO assignments VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT (tenant_id, assignment_id) DO UPDATE
                   SET company_id = EXCLUDED.company_id, plan_id = EXCLUDED.plan_id, end_date = EXCLUDED.end_date,
                       renewal_date = EXCLUDED.renewal_date, auto_renew = EXCLUDED.auto_renew,
                       active = EXCLUDED.active, version = EXCLUDED.version
                   WHERE assignments.version < EXCLUDED.version""",
                s.tenant_id,
                s.assignment_id,
                s.company_id,
                s.plan_id,
                s.end_date,
                renewal,
                bool(term and term.auto_renew),
                alive,
                v,
            )

    async def advance_clock(self, tenant_id: UUID, now: datetime) -> datetime:
        value: datetime = await self._conn.fetchval(
            """INSERT INTO clocks VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE
               SET now = greatest(clocks.now, EXCLUDED.now) RETURNING now""",
            tenant_id,
            now,
        )
        return value

    async def billing_now(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval("SELECT now FROM clocks")
        return value

    async def tenant(self) -> TenantInfo:
        row = await self._conn.fetchrow("SELECT name, timezone FROM tenants")
        return TenantInfo(row["name"], row["timezone"]) if row else TenantInfo("", "UTC")

    # -- recipients -----------------------------------------------------------------------------------------
    async def company_by_ref(self, company_ref: str) -> tuple[UUID, str, str | None] | None:
        row = await self._conn.fetchrow(
            """SELECT company_id, name, billing_email FROM companies WHERE company_ref = $1
               ORDER BY active DESC, version DESC LIMIT 1""",
            company_ref,
        )
        return (row["company_id"], row["name"], row["billing_email"]) if row else None

    async def company(self, company_id: UUID) -> tuple[str, str, str | None] | None:
        row = await self._conn.fetchrow(
            "SELECT company_ref, name, billing_email FROM companies WHERE company_id = $1", company_id
        )
        return (row["company_ref"], row["name"], row["billing_email"]) if row else None

    async def contacts(self, company_id: UUID) -> list[Recipient]:
        rows = await self._conn.fetch(
            """SELECT u.user_id, u.email, u.name, d.phone FROM users u
               LEFT JOIN recipient_details d ON d.tenant_id = u.tenant_id AND d.recipient_id = u.user_id
               WHERE u.company_id = $1 AND u.kind = $2 AND u.active ORDER BY u.user_id""",
            company_id,
            UserKind.CONTACT.value,
        )
        return [
            Recipient(r["user_id"], RecipientKind.CONTACT, r["email"], r["phone"], company_id, r["name"]) for r in rows
        ]

    async def phone(self, recipient_id: UUID) -> str | None:
        value: str | None = await self._conn.fetchval(
            "SELECT phone FROM recipient_details WHERE recipient_id = $1", recipient_id
        )
        return value

    async def staff_with_roles(self, roles: Sequence[str]) -> list[tuple[Recipient, str | None]]:
        rows = await self._conn.fetch(
            """SELECT u.user_id, u.email, u.name, u.user_ref, d.phone FROM users u
               LEFT JOIN recipient_details d ON d.tenant_id = u.tenant_id AND d.recipient_id = u.user_id
               WHERE u.kind = $1 AND u.active AND u.role = ANY($2::text[]) ORDER BY u.user_id""",
            UserKind.STAFF.value,
            list(roles),
        )
        return [
            (Recipient(r["user_id"], RecipientKind.STAFF, r["email"], r["phone"], None, r["name"]), r["user_ref"])
            for r in rows
        ]

    async def recipient(self, recipient_id: UUID) -> Recipient | None:
        """A user, or a client's billing address named by the company id."""
        phone = await self.phone(recipient_id)
        row = await self._conn.fetchrow(
            "SELECT email, name, kind, company_id FROM users WHERE user_id = $1", recipient_id
        )
        if row is not None:
            kind = RecipientKind.CONTACT if row["kind"] == UserKind.CONTACT.value else RecipientKind.STAFF
            return Recipient(recipient_id, kind, row["email"], phone, row["company_id"], row["name"])
        company = await self.company(recipient_id)
        if company is not None:
            return Recipient(recipient_id, RecipientKind.COMPANY, company[2], phone, recipient_id, company[1])
        return None

    # -- preferences ----------------------------------------------------------------------------------------
    async def choices(self, recipient_ids: Sequence[UUID]) -> dict[UUID, Choices]:
        rows = await self._conn.fetch(
            """SELECT recipient_id, notification_type, channel, enabled FROM preferences
               WHERE recipient_id = ANY($1::uuid[])""",
            list(recipient_ids),
        )
        out: dict[UUID, Choices] = {}
        for r in rows:
            out.setdefault(r["recipient_id"], {})[(NotificationType(r["notification_type"]), Channel(r["channel"]))] = (
                r["enabled"]
            )
        return out

    async def save_choices(
        self, tenant_id: UUID, recipient_id: UUID, choices: Choices, *, actor: str, at: datetime
    ) -> None:
        await self._conn.executemany(
            """INSERT INTO preferences VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (tenant_id, recipient_id, notification_type, channel) DO UPDATE
               SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by""",
            [(tenant_id, recipient_id, t.value, c.value, on, at, actor) for (t, c), on in choices.items()],
        )

    async def save_phone(self, tenant_id: UUID, recipient_id: UUID, phone: str | None) -> None:
        await self._conn.execute(
            """INSERT INTO recipient_details VALUES ($1, $2, $3) ON CONFLICT (tenant_id, recipient_id)
               DO UPDATE SET phone = EXCLUDED.phone""",
            tenant_id,
            recipient_id,
            phone,
        )

    # -- settings, endpoints, templates ---------------------------------------------------------------------
    async def settings(self, *, lock: bool = False) -> Settings:
        row = await self._conn.fetchrow("SELECT * FROM settings" + (" FOR UPDATE" if lock else ""))
        if row is None:
            return Settings()
        values = {k: row[k] for k in SETTING_FIELDS}
        values["reminder_offsets"] = tuple(values["reminder_offsets"])
        values["smtp_password"] = secrets_box.BOX.open(values["smtp_password"])
        values["sms_token"] = secrets_box.BOX.open(values["sms_token"])
        return Settings(**values)

    async def save_settings(self, tenant_id: UUID, s: Settings) -> None:
        cols = ", ".join(SETTING_FIELDS)
        params = ", ".join(f"${i + 2}" for i in range(len(SETTING_FIELDS)))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in SETTING_FIELDS)
        values = [getattr(s, f) for f in SETTING_FIELDS]
        values[SETTING_FIELDS.index("reminder_offsets")] = list(s.reminder_offsets)
        values[SETTING_FIELDS.index("smtp_password")] = secrets_box.BOX.seal(s.smtp_password)
        values[SETTING_FIELDS.index("sms_token")] = secrets_box.BOX.seal(s.sms_token)
        await self._conn.execute(
            f"INSERT INTO settings (tenant_id, {cols}) VALUES ($1, {params}) "
            f"ON CONFLICT (tenant_id) DO UPDATE SET {updates}",
            tenant_id,
            *values,
        )

    async def endpoints(self) -> list[Endpoint]:
        rows = await self._conn.fetch(
            "SELECT endpoint_id, url, company_id, types FROM webhook_endpoints WHERE active ORDER BY endpoint_id"
        )
        return [
            Endpoint(r["endpoint_id"], r["url"], r["company_id"], frozenset(NotificationType(t) for t in r["types"]))
            for r in rows
        ]

    async def endpoint_rows(self) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            "SELECT endpoint_id, url, company_id, types, active FROM webhook_endpoints ORDER BY endpoint_id"
        )
        return [dict(r) for r in rows]

    async def endpoint(self, endpoint_id: UUID) -> dict[str, Any] | None:
        row = await self._conn.fetchrow("SELECT * FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id)
        if row is None:
            return None
        return dict(row) | {"secret": secrets_box.BOX.open(row["secret"])}

    async def save_endpoint(self, tenant_id: UUID, e: dict[str, Any]) -> None:
        await self._conn.execute(
            """INSERT INTO webhook_endpoints VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (tenant_id, endpoint_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret,
                   company_id = EXCLUDED.company_id, types = EXCLUDED.types, active = EXCLUDED.active""",
            tenant_id,
            e["endpoint_id"],
            e["url"],
            secrets_box.BOX.seal(e["secret"]),
            e["company_id"],
            e["types"],
            e["active"],
        )

    async def templates(self) -> dict[tuple[NotificationType, Channel], Template]:
        rows = await self._conn.fetch("SELECT notification_type, channel, subject, body FROM templates")
        return {
            (NotificationType(r["notification_type"]), Channel(r["channel"])): Template(r["subject"], r["body"])
            for r in rows
        }

    async def save_template(self, tenant_id: UUID, kind: NotificationType, channel: Channel, t: Template) -> None:
        await self._conn.execute(
            """INSERT INTO templates VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant_id, notification_type, channel) DO UPDATE
               SET subject = EXCLUDED.subject, body = EXCLUDED.body""",
            tenant_id,
            kind.value,
            channel.value,
            t.subject,
            t.body,
        )

    async def delete_template(self, kind: NotificationType, channel: Channel) -> bool:
        status = await self._conn.execute(
            "DELETE FROM templates WHERE notification_type = $1 AND channel = $2", kind.value, channel.value
        )
        return status != "DELETE 0"

    # -- invoices and schedules -----------------------------------------------------------------------------
    async def save_invoice(self, tenant_id: UUID, inv: OpenInvoice) -> None:
        """Record an invoice (a repeat keeps the first; a status already closed stays closed)."""
        await self._conn.execute(
            """INSERT INTO invoices VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, invoice_id)
               DO NOTHING""",
            tenant_id,
            inv.invoice_id,
            inv.company_ref,
            inv.company_id,
            inv.due_date,
            inv.status,
            inv.context,
            inv.billing_email,
        )

    async def set_invoice_status(self, invoice_id: UUID, status: str) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = $2 WHERE invoice_id = $1
               AND status NOT IN ('paid', 'void', 'cancelled')""",
            invoice_id,
            status,
        )

    async def open_invoices(self, *, due_before: date) -> list[OpenInvoice]:
        rows = await self._conn.fetch(
            """SELECT * FROM invoices WHERE status NOT IN ('paid', 'void', 'cancelled') AND due_date <= $1
               ORDER BY invoice_id""",
            due_before,
        )
        return [
            OpenInvoice(
                r["invoice_id"],
                r["company_ref"],
                r["company_id"],
                r["due_date"],
                r["status"],
                r["context"],
                r["billing_email"],
            )
            for r in rows
        ]

    async def stages_done(self, invoice_ids: Sequence[UUID]) -> dict[UUID, set[int]]:
        rows = await self._conn.fetch(
            "SELECT invoice_id, offset_days FROM reminder_stages WHERE invoice_id = ANY($1::uuid[])", list(invoice_ids)
        )
        out: dict[UUID, set[int]] = {}
        for r in rows:
            out.setdefault(r["invoice_id"], set()).add(r["offset_days"])
        return out

    async def mark_stages(self, tenant_id: UUID, rows: Sequence[tuple[UUID, int, str, datetime]]) -> None:
        await self._conn.executemany(
            "INSERT INTO reminder_stages VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            [(tenant_id, *r) for r in rows],
        )

    async def renewing(self, *, until: date) -> list[Renewing]:
        rows = await self._conn.fetch(
            """SELECT a.assignment_id, a.company_id, coalesce(p.name, 'plan') AS plan_name, a.end_date,
                      a.renewal_date, a.auto_renew
               FROM assignments a LEFT JOIN plans p ON p.tenant_id = a.tenant_id AND p.plan_id = a.plan_id
               WHERE a.active AND a.renewal_date IS NOT NULL AND a.renewal_date <= $1
                 AND NOT EXISTS (SELECT 1 FROM renewal_notices n WHERE n.tenant_id = a.tenant_id
                                 AND n.assignment_id = a.assignment_id AND n.renewal_date = a.renewal_date)
               ORDER BY a.assignment_id""",
            until,
        )
        return [Renewing(**dict(r)) for r in rows]

    async def mark_renewal(self, tenant_id: UUID, assignment_id: UUID, renewal_date: date, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO renewal_notices VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            tenant_id,
            assignment_id,
            renewal_date,
            at,
        )

    # -- notifications and deliveries -----------------------------------------------------------------------
    async def save_document(self, tenant_id: UUID, document_id: UUID, filename: str, content: bytes) -> None:
        await self._conn.execute(
            "INSERT INTO documents VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            tenant_id,
            document_id,
            filename,
            content,
        )

    async def document(self, document_id: UUID) -> tuple[str, bytes] | None:
        row = await self._conn.fetchrow("SELECT filename, content FROM documents WHERE document_id = $1", document_id)
        return (row["filename"], bytes(row["content"])) if row else None

    async def add_notifications(self, tenant_id: UUID, items: Sequence[NewNotification]) -> set[UUID]:
        """Insert the notifications not recorded yet; returns the ids that were new (the others are repeats)."""
        if not items:
            return set()
        rows = await self._conn.fetch(
            """INSERT INTO notifications (tenant_id, notification_id, event_id, notification_type, channel,
                   recipient_id, recipient_kind, company_id, address, endpoint_id, subject, body, payload,
                   document_id, status, ready, last_error, triggered_at)
               SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
                   $8::uuid[], $9::text[], $10::uuid[], $11::text[], $12::text[], $13::jsonb[], $14::uuid[],
                   $15::text[], $16::boolean[], $17::text[], $18::timestamptz[])
               ON CONFLICT (tenant_id, notification_id) DO NOTHING
               RETURNING notification_id""",
            tenant_id,
            [n.notification_id for n in items],
            [n.event_id for n in items],
            [n.kind.value for n in items],
            [n.channel.value for n in items],
            [n.recipient.recipient_id for n in items],
            [n.recipient.kind.value for n in items],
            [n.recipient.company_id for n in items],
            [n.address for n in items],
            [n.endpoint_id for n in items],
            [n.subject for n in items],
            [n.body for n in items],
            [n.payload for n in items],
            [n.document_id for n in items],
            [n.status for n in items],
            [n.status == "pending" for n in items],
            [n.error for n in items],
            [n.triggered_at for n in items],
        )
        return {r["notification_id"] for r in rows}

    # -- overdue notices --------------------------------------------------------------------------------------
    async def lock_reminders(self, invoice_id: UUID) -> None:
        """Serialize the reminder schedule (clock consumer) and overdue notices (invoices consumer) of one
        invoice, so the one-message-a-day rule holds across the two transactions."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"notification-reminders:{invoice_id}"
        )

    async def invoice(self, invoice_id: UUID) -> OpenInvoice | None:
        r = await self._conn.fetchrow("SELECT * FROM invoices WHERE invoice_id = $1", invoice_id)
        if r is None:
            return None
        return OpenInvoice(
            r["invoice_id"],
            r["company_ref"],
            r["company_id"],
            r["due_date"],
            r["status"],
            r["context"],
            r["billing_email"],
        )

    async def stages_sent_at(self, invoice_id: UUID) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM reminder_stages WHERE invoice_id = $1 AND outcome = 'sent'", invoice_id
        )
        return [r["at"] for r in rows]

    async def mark_stage(self, tenant_id: UUID, invoice_id: UUID, offset: int, outcome: str, at: datetime) -> bool:
        """Mark one stage done; False when it was done already."""
        done = await self._conn.fetchval(
            "INSERT INTO reminder_stages VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            tenant_id,
            invoice_id,
            offset,
            outcome,
            at,
        )
        return bool(done)

    # -- bounces, suppression, unsubscribe links -------------------------------------------------------------
    async def link_key(self, tenant_id: UUID) -> str:
        await self._conn.execute(
            "INSERT INTO link_keys VALUES ($1, $2) ON CONFLICT DO NOTHING",
            tenant_id,
            secrets_box.BOX.seal(secrets.token_hex(32)),
        )
        value = secrets_box.BOX.open(
            await self._conn.fetchval("SELECT secret FROM link_keys WHERE tenant_id = $1", tenant_id)
        )
        assert value is not None
        return value

    async def existing_link_key(self) -> str | None:
        return secrets_box.BOX.open(await self._conn.fetchval("SELECT secret FROM link_keys"))

    async def add_bounce(
        self,
        tenant_id: UUID,
        bounce_id: UUID,
        *,
        address: str,
        kind: str,
        reason: str,
        notification_id: UUID | None,
        at: datetime,
        by: str,
    ) -> bool:
        """Keep a bounce report once; False for a repeated report (same bounce id)."""
        new = await self._conn.fetchval(
            """INSERT INTO bounces VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1""",
            tenant_id,
            bounce_id,
            address.lower(),
            kind,
            reason,
            notification_id,
            at,
            by,
        )
        return bool(new)

    async def suppress(self, tenant_id: UUID, address: str, bounce_id: UUID, reason: str, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO suppressed_addresses VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            tenant_id,
            address.lower(),
            bounce_id,
            reason,
            at,
        )

    async def suppression(self, address: str) -> tuple[str, datetime] | None:
        row = await self._conn.fetchrow(
            "SELECT reason, since FROM suppressed_addresses WHERE address = $1", address.lower()
        )
        return (row["reason"], row["since"]) if row else None

    async def bounces_of(self, address: str) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT bounce_id, kind, reason, notification_id, reported_at FROM bounces WHERE address = $1
               ORDER BY reported_at, bounce_id""",
            address.lower(),
        )
        return [dict(r) for r in rows]

    async def mark_suppressed(self, notification_id: UUID, reason: str, at: datetime) -> None:
        await self._conn.execute(
            """UPDATE notifications SET status = 'suppressed', ready = false, last_error = $2, updated_at = $3
               WHERE notification_id = $1""",
            notification_id,
            reason,
            at,
        )

    async def mark_bounced(self, notification_id: UUID, reason: str, at: datetime) -> dict[str, Any] | None:
        """A sent email bounced: the notification says so (it stays out of the queue)."""
        row = await self._conn.fetchrow(
            """UPDATE notifications SET status = 'bounced', ready = false, last_error = $2, updated_at = $3
               WHERE notification_id = $1 AND channel = 'email' AND status IN ('sent', 'bounced')
               RETURNING *""",
            notification_id,
            reason,
            at,
        )
        return dict(row) if row else None

    async def livemode(self) -> bool:
        mode: str | None = await self._conn.fetchval("SELECT mode FROM tenants")
        return mode == "live"

    async def release_retries(self, now: datetime) -> int:
        status = await self._conn.execute(
            """UPDATE notifications SET ready = true, updated_at = now()
               WHERE status = 'retrying' AND NOT ready AND (next_attempt_at IS NULL OR next_attempt_at <= $1)""",
            now,
        )
        return int(status.split()[-1])

    async def claim(self, notification_id: UUID) -> dict[str, Any] | None:
        row = await self._conn.fetchrow(
            """SELECT * FROM notifications WHERE notification_id = $1 AND ready
               AND status IN ('pending', 'retrying') FOR UPDATE SKIP LOCKED""",
            notification_id,
        )
        return dict(row) if row else None

    async def endpoint_secret(self, endpoint_id: UUID) -> str | None:
        return secrets_box.BOX.open(
            await self._conn.fetchval("SELECT secret FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id)
        )

    async def record_attempt(
        self,
        tenant_id: UUID,
        notification_id: UUID,
        *,
        attempt: int,
        at: datetime,
        error: str | None,
        status: str,
        next_attempt_at: datetime | None,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO delivery_attempts VALUES ($1, $2, $3, $4, $5, $6)",
            tenant_id,
            notification_id,
            attempt,
            at,
            "sent" if error is None else "failed",
            error,
        )
        await self._conn.execute(
            """UPDATE notifications SET status = $2, attempts = $3, ready = false, next_attempt_at = $4,
                   last_error = $5, sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END, updated_at = $6
               WHERE notification_id = $1""",
            notification_id,
            status,
            attempt,
            next_attempt_at,
            error,
            at,
        )

    async def listing(
        self,
        *,
        recipient_id: UUID | None,
        company_id: UUID | None,
        kind: str | None,
        status: str | None,
        event_id: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT notification_id, event_id, notification_type, channel, recipient_id, recipient_kind,
                      company_id, address, endpoint_id, subject, status, attempts, next_attempt_at, last_error,
                      triggered_at, created_at, sent_at, updated_at, document_id IS NOT NULL AS has_attachment
               FROM notifications
               WHERE ($1::uuid IS NULL OR recipient_id = $1) AND ($2::uuid IS NULL OR company_id = $2)
                 AND ($3::text IS NULL OR notification_type = $3) AND ($4::text IS NULL OR status = $4)
                 AND ($5::text IS NULL OR event_id = $5)
               ORDER BY created_at, notification_id LIMIT $6""",
            recipient_id,
            company_id,
            kind,
            status,
            event_id,
            limit,
        )
        return [dict(r) for r in rows]

    async def one(self, notification_id: UUID) -> dict[str, Any] | None:
        row = await self._conn.fetchrow(
            """SELECT notification_id, event_id, notification_type, channel, recipient_id, recipient_kind,
                      company_id, address, endpoint_id, subject, body, status, attempts, next_attempt_at,
                      last_error, triggered_at, created_at, sent_at, updated_at,
                      document_id IS NOT NULL AS has_attachment
               FROM notifications WHERE notification_id = $1""",
            notification_id,
        )
        return dict(row) if row else None

    async def attempts(self, notification_id: UUID) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            "SELECT attempt, at, outcome, error FROM delivery_attempts WHERE notification_id = $1 ORDER BY attempt",
            notification_id,
        )
        return [dict(r) for r in rows]
