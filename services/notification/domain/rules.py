"""What to send, to whom, over which channel, and when: pure rules, no I/O and no clock (time is an input)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo


class NotificationType(StrEnum):
    INVOICE_ISSUED = "invoice_issued"
    PAYMENT_REMINDER = "payment_reminder"
    OVERDUE = "overdue"
    OVERAGE_ALERT = "overage_alert"
    BUCKET_THRESHOLD = "bucket_threshold"
    UPCOMING_RENEWAL = "upcoming_renewal"
    APPROVAL_REQUESTED = "approval_requested"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


class RecipientKind(StrEnum):
    COMPANY = "company"  # a client's billing address (catalog's billing_email)
    CONTACT = "contact"  # a client contact user
    STAFF = "staff"  # an MSP user


CLIENT_TYPES = frozenset(NotificationType) - {NotificationType.APPROVAL_REQUESTED}

# What a recipient gets when they never said otherwise. The billing address receives the money matters; a
# contact the alerts about their usage and renewals (invoices go to the billing address unless they opt in);
# staff the approval requests waiting for them.
DEFAULTS: Mapping[RecipientKind, frozenset[tuple[NotificationType, Channel]]] = {
    RecipientKind.COMPANY: frozenset(
        (t, Channel.EMAIL)
        for t in (
            NotificationType.INVOICE_ISSUED,
            NotificationType.PAYMENT_REMINDER,
            NotificationType.OVERDUE,
            NotificationType.OVERAGE_ALERT,
            NotificationType.UPCOMING_RENEWAL,
        )
    ),
    RecipientKind.CONTACT: frozenset(
        (t, Channel.EMAIL)
        for t in (
            NotificationType.OVERAGE_ALERT,
            NotificationType.BUCKET_THRESHOLD,
            NotificationType.UPCOMING_RENEWAL,
        )
    ),
    RecipientKind.STAFF: frozenset({(NotificationType.APPROVAL_REQUESTED, Channel.EMAIL)}),
}


@dataclass(frozen=True, slots=True)
class Recipient:
    recipient_id: UUID  # the user id, or the company id for a billing address
    kind: RecipientKind
    email: str | None
    phone: str | None
    company_id: UUID | None  # the client (contacts, billing address); None for staff
    name: str


@dataclass(frozen=True, slots=True)
class Destination:
    """One message to send: who, how and where (an address, a phone number or a webhook endpoint)."""

    recipient: Recipient
    channel: Channel
    address: str
    endpoint_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: UUID
    url: str
    company_id: UUID | None  # None: the MSP's own endpoint (staff notifications)
    types: frozenset[NotificationType]  # empty: every type


def channels_for(
    recipient: Recipient, kind: NotificationType, choices: Mapping[tuple[NotificationType, Channel], bool]
) -> list[Channel]:
    """The channels ``recipient`` gets ``kind`` on: their own choice where they made one, else the default."""
    out = []
    for channel in Channel:
        chosen = choices.get((kind, channel))
        on = chosen if chosen is not None else (kind, channel) in DEFAULTS[recipient.kind]
        if on:
            out.append(channel)
    return out


def destinations(
    recipients: Iterable[Recipient],
    kind: NotificationType,
    choices: Mapping[UUID, Mapping[tuple[NotificationType, Channel], bool]],
    endpoints: Sequence[Endpoint],
) -> tuple[list[Destination], list[tuple[Recipient, Channel, str]]]:
    """Where a notification of ``kind`` goes, and what was wanted but cannot be sent (no phone, no endpoint).

    A webhook endpoint gets one call per event whoever of its client asked for it.
    """
    out: list[Destination] = []
    undeliverable: list[tuple[Recipient, Channel, str]] = []
    hooked: set[UUID] = set()
    for r in recipients:
        for channel in channels_for(r, kind, choices.get(r.recipient_id, {})):
            if channel is Channel.EMAIL:
                if r.email:
                    out.append(Destination(r, channel, r.email))
                else:
                    undeliverable.append((r, channel, "no email address"))
            elif channel is Channel.SMS:
                if r.phone:
                    out.append(Destination(r, channel, r.phone))
                else:
                    undeliverable.append((r, channel, "no phone number"))
            else:
                mine = [e for e in endpoints if e.company_id == r.company_id and (not e.types or kind in e.types)]
                if not mine:
                    undeliverable.append((r, channel, "no webhook endpoint"))
                for e in mine:
                    if e.endpoint_id not in hooked:
                        hooked.add(e.endpoint_id)
                        out.append(Destination(r, channel, e.url, e.endpoint_id))
    return out, undeliverable


def notification_id(event_id: UUID | str, destination: Destination) -> UUID:
    """The idempotency key: the triggering event, the recipient (or webhook endpoint) and the channel. A
    redelivered event derives the same ids and finds them already recorded."""
    who = destination.endpoint_id if destination.endpoint_id is not None else destination.recipient.recipient_id
    return uuid.uuid5(uuid.NAMESPACE_URL, f"notification:{event_id}:{who}:{destination.channel.value}")


# -- payment reminders ---------------------------------------------------------------------------------------

DEFAULT_REMINDER_OFFSETS: tuple[int, ...] = (-7, 0, 7, 14)
DEFAULT_RENEWAL_NOTICE_DAYS = 30
CLOSED_INVOICE_STATUSES = frozenset({"paid", "void", "cancelled"})


def start_of_day(day: date, timezone: str) -> datetime:
    """Midnight of ``day`` in the tenant's time zone: reminders fall due then."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def reminder_type(offset_days: int) -> NotificationType:
    return NotificationType.OVERDUE if offset_days > 0 else NotificationType.PAYMENT_REMINDER


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    send: int | None  # the offset to send now
    skip: tuple[int, ...]  # earlier offsets passed over (the clock jumped past them): never sent


def reminders_due(
    *, due_date: date, offsets: Iterable[int], done: Iterable[int], now: datetime, timezone: str, status: str
) -> ReminderPlan:
    """Which reminder to send at billing time ``now``. A closed invoice gets none. When the clock has passed
    several stages at once only the latest is sent (one message, the current one); the others are skipped."""
    if status in CLOSED_INVOICE_STATUSES:
        return ReminderPlan(None, ())
    finished = set(done)
    due = sorted(
        o for o in set(offsets) if o not in finished and start_of_day(due_date + timedelta(days=o), timezone) <= now
    )
    if not due:
        return ReminderPlan(None, ())
    return ReminderPlan(due[-1], tuple(due[:-1]))


def renewal_notice_due(
    *, renewal_date: date, end_date: date | None, notice_days: int, now: datetime, timezone: str
) -> bool:
    """Whether a renewal notice for a term ending ``renewal_date`` is due at ``now`` (and not yet past)."""
    if end_date is not None and end_date <= renewal_date:
        return False  # the assignment ends before its term would renew: nothing to announce
    return (
        start_of_day(renewal_date - timedelta(days=notice_days), timezone) <= now < start_of_day(renewal_date, timezone)
    )


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)


def threshold_type(subject: str, level_percent: Decimal) -> NotificationType:
    """100 % or more of what is included is an overage alert; below it, an early warning on the bucket."""
    if level_percent >= 100:
        return NotificationType.OVERAGE_ALERT
    return NotificationType.BUCKET_THRESHOLD


# -- delivery ------------------------------------------------------------------------------------------------

MAX_ATTEMPTS = 5
BACKOFF = (timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6))


def next_attempt(attempts: int, billing_now: datetime | None) -> tuple[str, datetime | None]:
    """After ``attempts`` failed tries: ("retrying", when in billing time) or ("failed", None).

    The retry falls due when the tenant's billing clock reaches the time (a sandbox's test clock drives it);
    with no billing time known yet it is due at the next tick.
    """
    if attempts >= MAX_ATTEMPTS:
        return "failed", None
    if billing_now is None:
        return "retrying", None
    return "retrying", billing_now + BACKOFF[min(attempts, len(BACKOFF)) - 1]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The webhook signature header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        expected = sign(secret, int(parts["t"]), body)
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, header)


# -- overdue notices -----------------------------------------------------------------------------------------


def overdue_notice_offset(*, due_date: date, day: date) -> int:
    """Invoicing's overdue notice on tenant-local ``day`` counts as the reminder stage of that many days."""
    return (day - due_date).days


def already_told_today(sent_days: Iterable[date], today: date) -> bool:
    """The one-message-a-day rule: an invoice gets at most one payment reminder or overdue message per
    tenant-local day. Whichever is recorded first that day (a scheduled reminder stage, or invoicing's overdue
    notice) is sent; the other is recorded as a skipped stage and sends nothing."""
    return today in set(sent_days)


# -- unsubscribe links ---------------------------------------------------------------------------------------

# Invoices are transactional: the client must receive the invoice it is asked to pay, so `invoice_issued`
# carries no unsubscribe link and cannot be opted out of by link (staff or the client's contacts can still
# route it elsewhere through preferences). Every other client-facing email carries one.
MANDATORY_TYPES = frozenset({NotificationType.INVOICE_ISSUED})


def unsubscribable(recipient: Recipient, kind: NotificationType, channel: Channel) -> bool:
    """Whether this message carries an unsubscribe link: client-facing emails of an optional type."""
    return channel is Channel.EMAIL and recipient.kind is not RecipientKind.STAFF and kind not in MANDATORY_TYPES


def unsubscribe_signature(secret: str, tenant_id: UUID, recipient_id: UUID, kind: NotificationType) -> str:
    """HMAC-SHA256 over the tenant, the recipient and the type: the link works for that recipient and type only."""
    message = f"unsubscribe:{tenant_id}:{recipient_id}:{kind.value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def unsubscribe_valid(secret: str, tenant_id: UUID, recipient_id: UUID, kind: NotificationType, sig: str) -> bool:
    return hmac.compare_digest(unsubscribe_signature(secret, tenant_id, recipient_id, kind), sig)
