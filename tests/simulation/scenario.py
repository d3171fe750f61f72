"""What a simulated MSP is made of: plain data, shared by the generator, the reference model and the driver.

Nothing here knows the platform's code. Every amount is a decimal string; every date a ``date``.
A scenario runs month by month. In month ``i`` the driver applies, in this order: the catalog changes and
status changes of phase 0 (what the MSP learnt at the start of the month), the records of phase 1, the
catalog changes of phase 2 (a service added midway), the records of phase 2; then it advances the test
clock to the month's end (local midnight of the next month's first day).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Record:
    """One message for a public topic: published in month ``month`` (0-based), ``phase`` 1 or 2."""

    topic: str  # billing.usage.v1 or billing.time-entries.v1
    key: str
    value: dict[str, Any] | bytes  # bytes: malformed on purpose
    month: int
    phase: int
    note: str = ""  # "", "duplicate", "malformed", "late", "unmapped"


@dataclass(frozen=True)
class CatalogChange:
    """A catalog write during the scenario (``PUT /v1/{collection}/{id}``), at ``phase`` 0 or 2 of ``month``."""

    month: int
    phase: int
    collection: str  # services, plans, assignments, discounts
    body: dict[str, Any]
    why: str


@dataclass(frozen=True)
class StatusChange:
    """``POST /v1/companies/{company_id}/status`` at the start (phase 0) of ``month``."""

    month: int
    company_id: str
    body: dict[str, Any]  # status, effective_date, reason, assignment_id?, service_id?


@dataclass(frozen=True)
class ExchangeRate:
    currency: str
    rate_date: date
    rate: str  # units of ``currency`` per 1 unit of the base currency
    source: str = "ECB"


@dataclass
class Scenario:
    seed: int
    tenant_id: str
    name: str
    timezone: str
    base_currency: str
    months: list[date]  # first day of each billed month; the month after the last is the end
    catalog: dict[str, list[dict[str, Any]]]  # the import document loaded at the start
    changes: list[CatalogChange] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    tax_rates: list[dict[str, Any]] = field(default_factory=list)  # PUT /v1/tax-rates/{id} bodies
    exemptions: list[dict[str, Any]] = field(default_factory=list)  # PUT /v1/exemptions/{id} bodies
    currencies: list[str] = field(default_factory=list)  # activated besides the base
    exchange_rates: list[ExchangeRate] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    clients: dict[str, str] = field(default_factory=dict)  # company_ref -> its arrangement in one line

    @property
    def end(self) -> date:
        last = self.months[-1]
        return date(last.year + (last.month == 12), last.month % 12 + 1, 1)

    def month_end(self, i: int) -> date:
        return self.months[i + 1] if i + 1 < len(self.months) else self.end
