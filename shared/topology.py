"""Who consumes what, declared once.

Each service builds its consumer groups from here (``<service>.<purpose>``), and the test clock reads it to
know which groups must have caught up before an advance takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import topics
from shared.topics import Topic


@dataclass(frozen=True, slots=True)
class Subscription:
    service: str
    purpose: str
    topic: Topic

    @property
    def group(self) -> str:
        return f"{self.service}.{self.purpose}"


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("metering", "usage", topics.USAGE),
    Subscription("metering", "time", topics.TIME_ENTRIES),
    Subscription("metering", "catalog", topics.CATALOG_EVENTS),
    Subscription("metering", "rules", topics.APPROVAL_RULES),
    Subscription("metering", "decisions", topics.APPROVAL_DECISIONS),
    Subscription("metering", "clock", topics.CLOCK_TICKS),
    Subscription("rating", "accepted", topics.METERING_ACCEPTED),
    Subscription("rating", "catalog", topics.CATALOG_EVENTS),
    Subscription("rating", "clock", topics.CLOCK_TICKS),
    Subscription("invoicing", "charges", topics.RATING_CHARGES),
    Subscription("invoicing", "catalog", topics.CATALOG_EVENTS),
    Subscription("invoicing", "tax", topics.TAX_RESULTS),
    Subscription("invoicing", "clock", topics.CLOCK_TICKS),
    Subscription("invoicing", "rules", topics.APPROVAL_RULES),
    Subscription("invoicing", "decisions", topics.APPROVAL_DECISIONS),
    Subscription("approvals", "requests", topics.APPROVAL_REQUESTS),
    Subscription("approvals", "clock", topics.CLOCK_TICKS),
    Subscription("approvals", "catalog", topics.CATALOG_EVENTS),
    Subscription("tax_currency", "catalog", topics.CATALOG_EVENTS),
    Subscription("tax_currency", "requests", topics.TAX_REQUESTS),
    Subscription("notification", "invoices", topics.INVOICE_LIFECYCLE),
    Subscription("notification", "thresholds", topics.RATING_THRESHOLDS),
    Subscription("notification", "approvals", topics.APPROVAL_PENDING),
    Subscription("notification", "catalog", topics.CATALOG_EVENTS),
    Subscription("notification", "clock", topics.CLOCK_TICKS),
    # catalog: approval rules and decisions (its replicas share these groups; one of them ticks the clock).
    Subscription("catalog", "rules", topics.APPROVAL_RULES),
    Subscription("catalog", "decisions", topics.APPROVAL_DECISIONS),
)


def subscription(service: str, purpose: str) -> Subscription:
    for sub in SUBSCRIPTIONS:
        if sub.service == service and sub.purpose == purpose:
            return sub
    raise KeyError(f"{service}.{purpose} is not declared in shared/topology.py")


def of_service(service: str) -> tuple[Subscription, ...]:
    return tuple(s for s in SUBSCRIPTIONS if s.service == service)
