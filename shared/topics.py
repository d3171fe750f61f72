"""Every Kafka topic of the platform, declared once.

The local stack, the test fixtures, `msp topics create` and the production topic creator all read this
module; nothing else names a topic's partition count. Every primary topic gets a dead-letter twin
(``<name>.dlq``) carrying `shared.contracts.dead_letters.DeadLetter` messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    DEAD_LETTER = "dead-letter"


KIB = 1024
MIB = 1024 * KIB
PRODUCER_MAX_REQUEST_BYTES = 8 * MIB
"""What the platform's producers send at most: the largest topic's ``max_record_bytes``."""


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int
    visibility: Visibility
    description: str
    max_record_bytes: int = MIB
    """The largest record the topic takes: created with it as ``max.message.bytes``, and enforced by the kernel
    on consumption (a bigger record is dead-lettered whole as ``too_large``, never read)."""

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


USAGE = Topic("billing.usage.v1", 12, Visibility.PUBLIC, "Usage reported by RMM / PSA / licence portals", 256 * KIB)
TIME_ENTRIES = Topic("billing.time-entries.v1", 6, Visibility.PUBLIC, "Technicians' time from the PSA", 256 * KIB)
INVOICES = Topic(  # an invoice of thousands of lines
    "billing.invoices.v1", 6, Visibility.PUBLIC, "Invoice events for downstream accounting", 8 * MIB
)

CATALOG_EVENTS = Topic("catalog.events.v1", 6, Visibility.INTERNAL, "State-carrying catalog changes, keyed by entity")
METERING_ACCEPTED = Topic(
    "metering.accepted.v1", 12, Visibility.INTERNAL, "Usage and time records accepted by metering"
)
RATING_CHARGES = Topic(
    "rating.charges.v1",
    12,
    Visibility.INTERNAL,
    "Rated charges and period-complete markers, in order per client (key tenant_id:company_ref)",
)
CLOCK_TICKS = Topic("billing.clock.v1", 3, Visibility.INTERNAL, "Billing-clock ticks per tenant")
APPROVAL_RULES = Topic("approvals.rules.v1", 3, Visibility.INTERNAL, "Approval rules, state-carrying")
APPROVAL_REQUESTS = Topic("approvals.requests.v1", 3, Visibility.INTERNAL, "Requests for approval")
APPROVAL_DECISIONS = Topic("approvals.decisions.v1", 3, Visibility.INTERNAL, "Final approval decisions")
APPROVAL_PENDING = Topic(
    "approvals.pending.v1", 3, Visibility.INTERNAL, "A step awaits a decision: approvers to tell (notification)"
)
INVOICE_LIFECYCLE = Topic(  # carries the PDF
    "invoicing.lifecycle.v1", 6, Visibility.INTERNAL, "Invoice lifecycle events for notification", 8 * MIB
)
RATING_THRESHOLDS = Topic(
    "rating.thresholds.v1", 6, Visibility.INTERNAL, "A bucket or usage service crossed a level (once per level, period)"
)
NOTIFICATION_DELIVERIES = Topic(
    "notification.deliveries.v1",
    6,
    Visibility.INTERNAL,
    "What became of each notification: sent, retrying, failed, bounced, suppressed (key tenant_id:notification_id)",
)
TAX_REQUESTS = Topic(
    "tax.requests.v1", 6, Visibility.INTERNAL, "Conversion and tax quotes asked for draft invoices (key tenant:invoice)"
)
TAX_RESULTS = Topic(
    "tax.results.v1", 6, Visibility.INTERNAL, "Quotes answered, pinned to the rate rows used (key tenant:invoice)"
)

PRIMARY_TOPICS: tuple[Topic, ...] = (
    USAGE,
    TIME_ENTRIES,
    INVOICES,
    CATALOG_EVENTS,
    METERING_ACCEPTED,
    RATING_CHARGES,
    CLOCK_TICKS,
    APPROVAL_RULES,
    APPROVAL_REQUESTS,
    APPROVAL_DECISIONS,
    APPROVAL_PENDING,
    INVOICE_LIFECYCLE,
    RATING_THRESHOLDS,
    NOTIFICATION_DELIVERIES,
    TAX_REQUESTS,
    TAX_RESULTS,
)

DLQ_PARTITIONS = 3


def all_topics() -> tuple[Topic, ...]:
    """Primary topics followed by one dead-letter topic for each."""
    dead = tuple(
        Topic(t.dlq, DLQ_PARTITIONS, Visibility.DEAD_LETTER, f"Dead letters of {t.name}") for t in PRIMARY_TOPICS
    )
    return PRIMARY_TOPICS + dead


def by_name(name: str) -> Topic:
    for topic in all_topics():
        if topic.name == name:
            return topic
    raise KeyError(name)


def max_record_bytes(name: str) -> int:
    """A topic's record limit (1 MiB, Kafka's default, for a topic the platform does not declare)."""
    try:
        return by_name(name).max_record_bytes
    except KeyError:
        return MIB
