"""Message templates: a default per notification type and channel, replaceable per tenant (Jinja2, sandboxed).

Email bodies are HTML rendered with autoescape on, so a client name or an approval summary can never inject
markup; subjects and SMS texts are plain text (no HTML to escape into), rendered in a sandbox all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.notification.domain.rules import Channel, NotificationType

_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


_INVOICE = (
    "<p>Dear {{ customer }},</p><p>Invoice {{ invoice_number }} for {{ amount_due }} {{ currency }} "
    "(period {{ period_start }} to {{ period_end }}) is attached, due on {{ due_date }}.</p>"
    "<p>Total {{ total }} {{ currency }}, tax {{ tax_total }}, already paid {{ amount_paid }}.</p>"
)
EMAIL: Mapping[NotificationType, Template] = {
    NotificationType.INVOICE_ISSUED: Template("Invoice {{ invoice_number }} from {{ sender }}", _INVOICE),
    NotificationType.PAYMENT_REMINDER: Template(
        "Payment reminder: invoice {{ invoice_number }} is due on {{ due_date }}",
        "<p>Dear {{ customer }},</p><p>Invoice {{ invoice_number }} for {{ amount_due }} {{ currency }} "
        "is due on {{ due_date }}.</p>",
    ),
    NotificationType.OVERDUE: Template(
        "Overdue: invoice {{ invoice_number }} was due on {{ due_date }}",
        "<p>Dear {{ customer }},</p><p>Invoice {{ invoice_number }} for {{ amount_due }} {{ currency }} "
        "was due on {{ due_date }} ({{ days_overdue }} days ago) and is still unpaid.</p>",
    ),
    NotificationType.OVERAGE_ALERT: Template(
        "Usage alert: {{ level_percent }}% of {{ what }} used",
        "<p>{{ customer }} has used {{ total }} {{ unit }} of the {{ limit }} included in {{ what }} "
        "for {{ period_start }} to {{ period_end }} ({{ level_percent }}%). Usage beyond it is charged.</p>",
    ),
    NotificationType.BUCKET_THRESHOLD: Template(
        "{{ level_percent }}% of {{ what }} used",
        "<p>{{ customer }} has used {{ total }} {{ unit }} of the {{ limit }} in {{ what }} "
        "for {{ period_start }} to {{ period_end }} ({{ level_percent }}%).</p>",
    ),
    NotificationType.UPCOMING_RENEWAL: Template(
        "Your agreement {{ 'renews' if auto_renew else 'ends' }} on {{ renewal_date }}",
        "<p>Dear {{ customer }},</p><p>Your {{ plan }} agreement {{ 'renews automatically' if auto_renew "
        "else 'comes to the end of its term' }} on {{ renewal_date }}.</p>",
    ),
    NotificationType.APPROVAL_REQUESTED: Template(
        "Approval needed: {{ summary }}",
        "<p>{{ item_type }} {{ item_id }} waits for your decision (step {{ step }} of {{ of_steps }}, "
        "{{ reason }}).</p><p>{{ summary }}</p>"
        "{% if due_at %}<p>Decide before {{ due_at }}.</p>{% endif %}",
    ),
}
SMS: Mapping[NotificationType, Template] = {
    NotificationType.INVOICE_ISSUED: Template(
        "", "{{ sender }}: invoice {{ invoice_number }}, {{ amount_due }} {{ currency }}, due {{ due_date }}."
    ),
    NotificationType.PAYMENT_REMINDER: Template(
        "", "{{ sender }}: invoice {{ invoice_number }} ({{ amount_due }} {{ currency }}) is due {{ due_date }}."
    ),
    NotificationType.OVERDUE: Template(
        "",
        "{{ sender }}: invoice {{ invoice_number }} ({{ amount_due }} {{ currency }}) is overdue since {{ due_date }}.",
    ),
    NotificationType.OVERAGE_ALERT: Template(
        "", "{{ sender }}: {{ level_percent }}% of {{ what }} used ({{ total }} of {{ limit }} {{ unit }})."
    ),
    NotificationType.BUCKET_THRESHOLD: Template(
        "", "{{ sender }}: {{ level_percent }}% of {{ what }} used ({{ total }} of {{ limit }} {{ unit }})."
    ),
    NotificationType.UPCOMING_RENEWAL: Template("", "{{ sender }}: your agreement term ends on {{ renewal_date }}."),
    NotificationType.APPROVAL_REQUESTED: Template("", "Approval needed: {{ summary }}"),
}


def default_template(kind: NotificationType, channel: Channel) -> Template:
    """The built-in template (webhooks carry the data as JSON and reuse the email subject as their title)."""
    return SMS[kind] if channel is Channel.SMS else EMAIL[kind]


class TemplateInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def render(template: Template, channel: Channel, context: Mapping[str, Any]) -> Rendered:
    body_env = _HTML if channel is Channel.EMAIL else _TEXT
    subject = _TEXT.from_string(template.subject).render(context).strip() if template.subject else ""
    return Rendered(subject=subject, body=body_env.from_string(template.body).render(context))


_COMMON = {"sender": "Northwind IT", "customer": "Acme Dental", "company_ref": "acme", "recipient_name": "Pat"}
_INVOICE_KEYS = {
    "invoice_number": "INV-2602-00001",
    "invoice_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "amount_due": "107.50",
    "total": "107.50",
    "tax_total": "7.50",
    "amount_paid": "0.00",
    "currency": "GBP",
    "due_date": "2026-03-03",
    "issue_date": "2026-02-01",
    "period_start": "2026-01-01",
    "period_end": "2026-02-01",
    "days_overdue": 7,
    "offset_days": 7,
}
_THRESHOLD_KEYS = {
    "level_percent": "100",
    "limit": "20",
    "total": "20",
    "unit": "hour",
    "what": "your support hours",
    "subject": "bucket",
    "period_start": "2026-01-01",
    "period_end": "2026-02-01",
}
_RENEWAL_KEYS = {"renewal_date": "2027-01-01", "auto_renew": True, "plan": "Managed devices"}
_APPROVAL_KEYS = {
    "summary": "9.5 h by tech.jane on T-20931 (acme)",
    "item_type": "time_entry",
    "item_id": "cw-time-884213",
    "step": 1,
    "of_steps": 2,
    "reason": "requested",
    "due_at": "2026-02-02T10:31:00+00:00",
    "requested_by": "tech.jane",
}
SAMPLE_CONTEXT: Mapping[NotificationType, Mapping[str, Any]] = {
    NotificationType.INVOICE_ISSUED: _COMMON | _INVOICE_KEYS,
    NotificationType.PAYMENT_REMINDER: _COMMON | _INVOICE_KEYS,
    NotificationType.OVERDUE: _COMMON | _INVOICE_KEYS,
    NotificationType.OVERAGE_ALERT: _COMMON | _THRESHOLD_KEYS,
    NotificationType.BUCKET_THRESHOLD: _COMMON | _THRESHOLD_KEYS,
    NotificationType.UPCOMING_RENEWAL: _COMMON | _RENEWAL_KEYS,
    NotificationType.APPROVAL_REQUESTED: _COMMON | _APPROVAL_KEYS,
}
"""The names each type's templates may use (what the service provides), with sample values."""


def check(template: Template, kind: NotificationType, channel: Channel) -> None:
    """Refuse a template that does not compile or uses a name its type does not provide (the field is named)."""
    for field, source in (("subject", template.subject), ("body", template.body)):
        try:
            env = _HTML if (channel is Channel.EMAIL and field == "body") else _TEXT
            env.from_string(source).render(SAMPLE_CONTEXT[kind])
        except TemplateError as exc:
            raise TemplateInvalid(field, str(exc)) from exc
    if channel is Channel.EMAIL and not template.subject.strip():
        raise TemplateInvalid("subject", "an email needs a subject")
