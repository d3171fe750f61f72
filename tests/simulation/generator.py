"""Seeded, realistic MSP scenarios: ``generate(seed)`` is the same scenario every time for the same seed.

One sandbox tenant (a time zone, a base currency), its catalog document, the changes it makes later (a plan
change, a client leaving, a new client, a service added midway, a suspension), tax rates for six regions,
exemptions, four currencies with their exchange rates, and every record the MSP's tools publish month by
month: RMM device counts and M365 seats (snapshots, some before a client's plan starts), backup storage and
egress (deltas), the PSA's time entries, records near local midnight, duplicates, one malformed record a month,
records for a service the catalog does not have yet, and late records for a month already closed.

Every amount is a decimal string. Nothing here knows the platform's code; ids derive from the tenant id.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.simulation.scenario import CatalogChange, ExchangeRate, Record, Scenario, StatusChange

USAGE, TIME = "billing.usage.v1", "billing.time-entries.v1"
TIMEZONES = ["Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
CURRENCIES = ["GBP", "EUR", "USD", "JPY"]
MINOR = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0}
# Rough value of one unit of each currency in GBP, to draw prices and rates of a sensible size.
SCALE = {"GBP": Decimal(1), "EUR": Decimal("1.16"), "USD": Decimal("1.27"), "JPY": Decimal(190)}
REGIONS = {"GB": "GBP", "IE": "EUR", "US-TX": "USD", "DE": "EUR", "JP": "JPY", "CA-QC": "USD"}

# code: (type, unit, category, GBP rate range, tax category)
SERVICES: dict[str, tuple[str, str, str, tuple[str, str], str | None]] = {
    "managed-services": ("Fixed", "month", "endpoint", ("250", "900"), None),
    "site-licence": ("Fixed", "licence", "endpoint", ("12", "45"), None),
    "edr-agent": ("Fixed", "month", "endpoint", ("40", "90"), None),
    "email-security": ("Fixed", "month", "cloud", ("30", "70"), None),
    "support-desk": ("Fixed", "month", "support", ("150", "400"), None),
    "retainer-fee": ("Fixed", "month", "support", ("800", "2400"), None),
    "rmm-device": ("Usage", "device", "endpoint", ("8", "15"), None),
    "m365-seat": ("Usage", "seat", "cloud", ("9.80", "22"), None),
    "vm-host": ("Usage", "vm", "cloud", ("35", "80"), None),
    "backup-storage": ("Usage", "GB", "cloud", ("0.05", "0.30"), None),
    "egress": ("Usage", "GB", "cloud", ("0.02", "0.12"), None),
    "cloud-archive": ("Usage", "GB", "cloud", ("0.01", "0.09"), None),
    "remote-support": ("Time", "hour", "support", ("75", "120"), None),
    "onsite-engineer": ("Time", "hour", "support", ("110", "160"), None),
    "project-work": ("Time", "hour", "support", ("120", "180"), None),
    "training": ("Time", "hour", "support", ("90", "140"), "training"),
    "retainer-support": ("Time", "hour", "support", ("80", "130"), None),
}
ADDED_MIDWAY = "cloud-archive"
CATEGORIES = {"endpoint": "Managed endpoints", "cloud": "Cloud and licences", "support": "Support and projects"}
ARCHETYPES = [
    "managed",
    "tm",
    "retainer",
    "metered",
    "advance",
    "newcomer",
    "plan-change",
    "multi-plan",
    "suspended",
    "leaving",
    "managed",
    "tm",
]


def d2(x: Decimal, places: int = 2) -> str:
    return str(x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


@dataclass
class Client:
    n: int
    ref: str
    company_id: str
    region: str
    currency: str
    anchor: date
    archetype: str
    notes: list[str] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)


class Builder:
    def __init__(self, seed: int, clients: int, months: int, tenant_id: str | None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.tenant = tenant_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"msp-sim:{seed}"))
        self.tz = self.rng.choice(TIMEZONES)
        self.base = self.rng.choice(["GBP", "USD", "EUR"])
        first = date(2025, 10, 1)
        start = self._add_months(first, self.rng.randrange(0, 13))
        self.months = [self._add_months(start, i) for i in range(months)]
        self.end = self._add_months(start, months)
        self.n_clients = clients
        self.doc: dict[str, list[dict[str, Any]]] = {
            k: []
            for k in ["users", "companies", "categories", "services", "bundles", "plans", "assignments", "discounts"]
        }
        self.changes: list[CatalogChange] = []
        self.statuses: list[StatusChange] = []
        self.records: list[Record] = []
        self.clients: list[Client] = []
        self.service_ids: dict[str, str] = {}
        self.rates: dict[str, Decimal] = {}
        self.plans: dict[str, dict[str, Any]] = {}  # name -> plan body (shared templates)
        self.counter = 0

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _add_months(d: date, k: int) -> date:
        m = d.month - 1 + k
        return date(d.year + m // 12, m % 12 + 1, 1)

    def uid(self, name: str) -> str:
        return str(uuid.uuid5(uuid.UUID(self.tenant), name))

    def money(self, lo: str, hi: str, currency: str, *, extra_places: int = 0) -> str:
        """A price between lo and hi GBP, in ``currency``, at its minor units (plus ``extra_places``)."""
        places = MINOR[currency] + extra_places
        low, high = Decimal(lo) * SCALE[currency], Decimal(hi) * SCALE[currency]
        steps = int((high - low) * 10**places)
        return d2(low + Decimal(self.rng.randint(0, max(steps, 1))).scaleb(-places), places)

    def at(self, day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute, second), tzinfo=ZoneInfo(self.tz))

    def iso(self, moment: datetime) -> str:
        """An instant as an RMM would send it: mostly UTC, sometimes the local offset."""
        if self.rng.random() < 0.3:
            return moment.isoformat()
        return moment.astimezone(UTC).isoformat()

    def days(self, i: int) -> list[date]:
        start, end = self.months[i], self.month_end(i)
        return [start + timedelta(days=k) for k in range((end - start).days)]

    def month_end(self, i: int) -> date:
        return self.months[i + 1] if i + 1 < len(self.months) else self.end

    def month_of(self, day: date) -> int:
        for i, m in enumerate(self.months):
            if m <= day < self.month_end(i):
                return i
        return -1 if day < self.months[0] else len(self.months)

    def mid(self, i: int, lo: int = 6, hi: int = 24) -> date:
        return self.months[i] + timedelta(days=self.rng.randint(lo, hi))

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:05d}"

    # -- records ------------------------------------------------------------------------------------------
    def usage(
        self,
        c: Client,
        code: str,
        qty: str,
        moment: datetime,
        kind: str,
        *,
        month: int | None = None,
        phase: int = 1,
        note: str = "",
        source: str = "ninjaone",
    ) -> dict[str, Any]:
        # the RMM knows the client by its own id (the client's ref for source ninjaone), mostly
        ref = f"NINJA-{c.n:03d}" if source == "ninjaone" and self.rng.random() < 0.7 else c.ref
        value = {
            "event_id": self.next_id("u"),
            "source": source,
            "tenant_id": self.tenant,
            "company_ref": ref,
            "service_ref": code,
            "kind": kind,
            "quantity": qty,
            "unit": SERVICES[code][1],
            "occurred_at": self.iso(moment),
        }
        published = self.month_of(moment.date()) if month is None else month
        self.records.append(Record(USAGE, f"{self.tenant}:{ref}", value, max(published, 0), phase, note))
        return value

    def entry(
        self,
        c: Client,
        code: str,
        user_ref: str,
        start: datetime,
        minutes: int,
        *,
        billable: bool = True,
        month: int | None = None,
        note: str = "",
    ) -> dict[str, Any]:
        value = {
            "entry_id": self.next_id("t"),
            "source": "connectwise",
            "tenant_id": self.tenant,
            "company_ref": c.ref,
            "service_ref": code,
            "user_ref": user_ref,
            "ticket_ref": f"T-{self.counter}",
            "start_time": self.iso(start),
            "end_time": self.iso(start + timedelta(minutes=minutes)),
            "billable": billable,
            "notes": "remote session" if billable else "internal runbook",
        }
        published = self.month_of(start.date()) if month is None else month
        self.records.append(Record(TIME, f"{self.tenant}:{c.ref}", value, max(published, 0), 1, note))
        return value

    def snapshots(
        self,
        c: Client,
        code: str,
        first: date,
        last: date,
        count: int,
        *,
        every: tuple[int, int],
        hour: int = 6,
        source: str = "ninjaone",
    ) -> None:
        """Counts from ``first`` to ``last`` (inclusive), every few days, a random walk from ``count``; the first
        one sometimes at local midnight exactly."""
        day = first
        at_midnight = self.rng.random() < 0.3
        while day <= last and self.month_of(day) < len(self.months):
            minute = self.rng.randint(0, 59)
            moment = self.at(day, 0) if at_midnight else self.at(day, hour, minute)
            at_midnight = False
            self.usage(c, code, str(count), moment, "snapshot", source=source)
            count = max(0, count + self.rng.randint(-4, 5))
            day += timedelta(days=self.rng.randint(*every))

    def nightly(self, c: Client, code: str, first: date, last: date, lo: int, hi: int, *, skip: float = 0.3) -> None:
        """Deltas reported late each evening (23:xx local, so often another day in UTC)."""
        day = max(first, self.months[0])
        while day <= last and self.month_of(day) < len(self.months):
            if self.rng.random() > skip:
                qty = Decimal(self.rng.randint(lo * 10, hi * 10)) / 10
                self.usage(c, code, str(qty), self.at(day, 23, self.rng.randint(0, 59)), "delta")
            day += timedelta(days=1)

    def time_entries(self, c: Client, codes: list[str], first: date, last: date, per_month: tuple[int, int]) -> None:
        techs = ["tech.ana", "tech.ben", "tech.chen", "tech.dev"]
        for i in range(len(self.months)):
            days = [d for d in self.days(i) if first <= d <= last]
            if not days:
                continue
            for _ in range(self.rng.randint(*per_month)):
                day = self.rng.choice(days)
                minutes = self.rng.choice(
                    [7, 10, 15, 20, 25, 30, 40, 45, 50, 55, 60, 75, 90, 100, 120, 150, 180, 240, 300]
                )
                hour = self.rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 23])
                minute = self.rng.choice([0, 5, 10, 15, 20, 30, 35, 40, 45, 50])
                billable = self.rng.random() > 0.1
                self.entry(
                    c,
                    self.rng.choice(codes),
                    self.rng.choice(techs),
                    self.at(day, hour, minute),
                    minutes,
                    billable=billable,
                )

    # -- catalog --------------------------------------------------------------------------------------------
    def base_catalog(self) -> None:
        people = [
            ("tech.ana", "Ana Ruiz", self.base, "95"),
            ("tech.ben", "Ben Okafor", self.base, "120"),
            ("tech.chen", "Chen Wei", "JPY" if self.base != "JPY" else "USD", None),
            ("tech.dev", "Dev Patel", None, None),
        ]
        for ref, name, currency, rate in people:
            user: dict[str, Any] = {
                "user_id": self.uid(f"user:{ref}"),
                "email": f"{ref}@msp.example",
                "name": name,
                "role": "technician",
                "kind": "staff",
                "user_ref": ref,
            }
            if currency:
                user["currency"] = currency
                user["hourly_rate"] = (
                    self.money(rate or "70", rate or "110", currency) if rate else self.money("70", "110", currency)
                )
            self.doc["users"].append(user)
        self.doc["users"].append(
            {
                "user_id": self.uid("user:manager"),
                "email": "billing@msp.example",
                "name": "Morgan Lee",
                "role": "billing_manager",
                "kind": "staff",
            }
        )
        for key, name in CATEGORIES.items():
            self.doc["categories"].append({"category_id": self.uid(f"category:{key}"), "name": name})
        aggregations = ["peak", "last", "time_weighted_average"]
        for code, (kind, unit, category, (lo, hi), tax_category) in SERVICES.items():
            sid = self.uid(f"service:{code}")
            self.service_ids[code] = sid
            rate = self.money(lo, hi, self.base, extra_places=1 if code in ("backup-storage", "egress") else 0)
            self.rates[code] = Decimal(rate)
            body: dict[str, Any] = {
                "service_id": sid,
                "code": code,
                "name": code.replace("-", " ").capitalize(),
                "service_type": kind,
                "default_rate": rate,
                "currency": self.base,
                "unit": unit,
                "category_id": self.uid(f"category:{category}"),
            }
            if tax_category:
                body["tax_category"] = tax_category
            if kind == "Usage":
                body["snapshot_aggregation"] = (
                    "time_weighted_average" if code == "vm-host" else self.rng.choice(aggregations)
                )
            if code != ADDED_MIDWAY:
                self.doc["services"].append(body)
            else:
                self.added_midway = body
        bundle_price = self.money("60", "120", self.base)
        self.bundle_id = self.uid("bundle:security")
        self.doc["bundles"].append(
            {
                "bundle_id": self.bundle_id,
                "name": "Security pack",
                "price": bundle_price,
                "currency": self.base,
                "description": "EDR and email security",
                "service_ids": [self.service_ids["edr-agent"], self.service_ids["email-security"]],
            }
        )

    def line(self, code: str, currency: str, **extra: Any) -> dict[str, Any]:
        """A plan line; in a currency other than the service's, it carries its own price."""
        body: dict[str, Any] = {"service_id": self.service_ids[code]} | extra
        if currency != self.base and "pricing" not in body and "custom_rate" not in body:
            body["custom_rate"] = d2(self.rates[code] * SCALE[currency] / SCALE[self.base], MINOR[currency])
        return body

    def unit_pricing(self, code: str, currency: str) -> dict[str, Any]:
        lo, hi = SERVICES[code][3]
        extra = 1 if code in ("backup-storage", "egress", "cloud-archive") else 0
        return {"model": "per_unit", "unit_price": self.money(lo, hi, currency, extra_places=extra)}

    def tiered(self, code: str, currency: str, model: str, bounds: list[int]) -> dict[str, Any]:
        lo, hi = (Decimal(x) for x in SERVICES[code][3])
        tiers = []
        price = hi
        for k, bound in enumerate([*bounds, None]):
            price = max(lo / 2, price * Decimal(self.rng.choice(["0.9", "0.8", "0.75"])))
            places = MINOR[currency] + (1 if hi < 1 else 0)
            tier: dict[str, Any] = {
                "up_to": str(bound) if bound is not None else None,
                "unit_price": d2(price * SCALE[currency], places),
            }
            if k > 0 and self.rng.random() < 0.3:
                tier["flat_fee"] = self.money("15", "40", currency)
            tiers.append(tier)
        return {"model": model, "tiers": tiers}

    def plan(
        self,
        name: str,
        plan_type: str,
        lines: list[dict[str, Any]],
        currency: str,
        *,
        timing: str = "arrears",
        bucket: dict[str, Any] | None = None,
        custom_for: Client | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "plan_id": self.uid(f"plan:{name}"),
            "name": name,
            "plan_type": plan_type,
            "billing_frequency": "monthly",
            "currency": currency,
            "lines": lines,
            "billing_timing": timing,
        }
        if bucket:
            body["bucket"] = bucket
        if custom_for:
            body["is_custom"] = True
            body["company_id"] = custom_for.company_id
        self.doc["plans"].append(body)
        self.plans[name] = body
        return body

    def assign(
        self,
        c: Client,
        plan: dict[str, Any],
        start: date,
        *,
        end: date | None = None,
        scope: str | None = None,
        known: int | None = None,
        name: str = "",
    ) -> dict[str, Any]:
        """An assignment, in the import document, or (``known`` = month) made at the start of that month."""
        body: dict[str, Any] = {
            "assignment_id": self.uid(f"assignment:{c.ref}:{plan['name']}:{name}"),
            "company_id": c.company_id,
            "plan_id": plan["plan_id"],
            "start_date": start.isoformat(),
        }
        if end:
            body["end_date"] = end.isoformat()
        if scope:
            body["service_category"] = self.uid(f"category:{scope}")
        if known is None or known <= 0:
            self.doc["assignments"].append(body)
        else:
            self.changes.append(CatalogChange(known, 0, "assignments", body, f"{c.ref}: new assignment"))
        c.assignments.append(body)
        return body

    def end_assignment(self, c: Client, assignment: dict[str, Any], end: date, month: int, why: str) -> None:
        body = assignment | {"end_date": end.isoformat()}
        self.changes.append(CatalogChange(month, 0, "assignments", body, f"{c.ref}: {why}"))

    def discount(
        self,
        name: str,
        dtype: str,
        value: str,
        *,
        company: Client | None = None,
        plan: dict[str, Any] | None = None,
        service: str | None = None,
        currency: str | None = None,
        valid_from: date | None = None,
        valid_to: date | None = None,
        known: int = 0,
    ) -> dict[str, Any]:
        """A discount, in the import document, or (``known`` = month) agreed at the start of that month."""
        body: dict[str, Any] = {
            "discount_id": self.uid(f"discount:{name}"),
            "name": name,
            "discount_type": dtype,
            "value": value,
        }
        if company:
            body["company_id"] = company.company_id
        if plan:
            body["plan_id"] = plan["plan_id"]
        if service:
            body["service_id"] = self.service_ids[service]
        if currency:
            body["currency"] = currency
        if valid_from:
            body["valid_from"] = valid_from.isoformat()
        if valid_to:
            body["valid_to"] = valid_to.isoformat()
        if known > 0:
            self.changes.append(CatalogChange(known, 0, "discounts", body, f"discount {name} agreed"))
        else:
            self.doc["discounts"].append(body)
        return body

    # -- clients ---------------------------------------------------------------------------------------------
    def new_client(self, n: int, archetype: str) -> Client:
        region = self.rng.choice(list(REGIONS))
        currency = REGIONS[region] if self.rng.random() < 0.7 else self.rng.choice(CURRENCIES)
        anchor = self._add_months(self.months[0], -self.rng.randrange(0, 8))
        ref = f"c{n:02d}-{archetype}"
        c = Client(n, ref, self.uid(f"company:{n}"), region, currency, anchor, archetype)
        self.doc["companies"].append(
            {
                "company_id": c.company_id,
                "company_ref": ref,
                "name": f"Client {n} ({archetype})",
                "billing_email": f"ap@{ref}.example",
                "region": region,
                "currency": currency,
                "payment_terms_days": 30,
                "billing_anchor": anchor.isoformat(),
                "refs": [{"source": "ninjaone", "ref": f"NINJA-{n:03d}"}],
            }
        )
        self.clients.append(c)
        return c

    def plan_currency(self, c: Client) -> str:
        return c.currency if self.rng.random() < 0.25 else self.base

    def managed_plan(
        self, c: Client, currency: str, *, timing: str = "arrears", name: str | None = None
    ) -> dict[str, Any]:
        shared = name is None and currency == self.base and timing == "arrears"
        name = name or (f"Managed Gold {currency}" if shared else f"Managed {c.ref}")
        if shared and name in self.plans:
            return self.plans[name]
        lines = [self.line("managed-services", currency)]
        lines.append(self.line("rmm-device", currency, pricing=self.unit_pricing("rmm-device", currency)))
        seat: dict[str, Any] = {"pricing": self.unit_pricing("m365-seat", currency)}
        if self.rng.random() < 0.5:
            seat["included_quantity"] = str(self.rng.choice([5, 10]))
        lines.append(self.line("m365-seat", currency, **seat))
        lines.append(self.line("backup-storage", currency, pricing=self.unit_pricing("backup-storage", currency)))
        if currency == self.base and self.rng.random() < 0.6:
            lines.append({"bundle_id": self.bundle_id})
        return self.plan(name, "hybrid", lines, currency, timing=timing)

    def managed_records(self, c: Client, first: date, last: date) -> None:
        self.snapshots(c, "rmm-device", first, last, self.rng.randint(15, 70), every=(1, 4))
        self.snapshots(c, "m365-seat", first, last, self.rng.randint(8, 40), every=(6, 9), hour=7, source="m365-portal")
        self.nightly(c, "backup-storage", first, last, 20, 90)

    def tm_plan(self) -> dict[str, Any]:
        if "Time and materials" in self.plans:
            return self.plans["Time and materials"]
        b = self.base
        remote: dict[str, Any] = {"rounding_increment_minutes": 15, "custom_rate": self.money("80", "110", b)}
        if len(self.months) > 1 and self.rng.random() < 0.6:  # a price rise from mid-month
            when = self.mid(self.rng.randrange(1, len(self.months)))
            remote["prices"] = [{"effective_from": when.isoformat(), "custom_rate": self.money("111", "125", b)}]
        lines = [
            self.line("remote-support", b, **remote),
            self.line(
                "onsite-engineer",
                b,
                rounding_increment_minutes=30,
                minimum_minutes=60,
                custom_rate=self.money("120", "160", b),
            ),
            self.line("project-work", b, rounding_increment_minutes=6),
            self.line(
                "training",
                b,
                rounding_increment_minutes=30,
                pricing={"model": "per_unit", "unit_price": self.money("90", "130", b)},
            ),
        ]
        return self.plan("Time and materials", "time-based", lines, b)

    def client(self, n: int, archetype: str) -> None:
        rng, first, last = self.rng, self.months[0], self.end - timedelta(days=1)
        c = self.new_client(n, archetype)
        if archetype == "managed":
            cur = self.plan_currency(c)
            plan = self.managed_plan(c, cur)
            self.assign(c, plan, first)
            self.managed_records(c, first, last)
            c.notes.append(f"{plan['name']} ({cur})")
        elif archetype == "tm":
            plan = self.tm_plan()
            self.assign(c, plan, first)
            if rng.random() < 0.5:
                desk = self.plans.get("Service desk") or self.plan(
                    "Service desk", "fixed", [self.line("support-desk", self.base)], self.base
                )
                self.assign(c, desk, self.mid(0, 0, 20) if rng.random() < 0.5 else first)
                c.notes.append("service desk flat fee (fixed plan)")
            self.time_entries(
                c, ["remote-support", "onsite-engineer", "project-work", "training"], first, last, (6, 12)
            )
            c.notes.append("time and materials")
        elif archetype == "retainer":
            cur = self.plan_currency(c)
            period = rng.choice(["weekly", "monthly"])
            hours = Decimal(rng.choice([4, 5, 6, 8, 10])) * (1 if period == "weekly" else 4)
            policy = rng.choice(["none", "carry_up_to", "expire_after"])
            rollover: dict[str, Any] = {"policy": policy}
            if policy == "carry_up_to":
                rollover["max_hours"] = str(rng.choice([2, 3, 5]))
            if policy == "expire_after":
                rollover["periods"] = rng.choice([1, 2])
            bucket = {
                "hours": str(hours),
                "period": period,
                "overage_rate": self.money("100", "150", cur),
                "rollover": rollover,
            }
            codes = ["retainer-support"] + (["remote-support"] if rng.random() < 0.5 else [])
            lines = [self.line("retainer-fee", cur)] + [self.line(k, cur) for k in codes]
            plan = self.plan(f"Retainer {c.ref}", "bucket", lines, cur, bucket=bucket)
            # from the first month: bucket periods before the platform's first close were never settled
            start = self.months[0] if rng.random() < 0.6 else self.mid(0, 3, 20)
            self.assign(c, plan, start)
            self.time_entries(c, codes, start, last, (9, 15))
            c.notes.append(f"bucket {hours} h {period}, rollover {policy}, from {start}")
        elif archetype == "metered":
            cur = self.plan_currency(c)
            lines = [
                self.line("egress", cur, pricing=self.tiered("egress", cur, "graduated", [500, 2000])),
                self.line("vm-host", cur, pricing=self.tiered("vm-host", cur, "volume", [5, 12])),
                self.line(
                    "backup-storage",
                    cur,
                    included_quantity=str(rng.choice([100, 250, 500])),
                    pricing={
                        "model": "package",
                        "package_size": str(rng.choice([100, 250])),
                        "package_price": self.money("8", "25", cur),
                    },
                ),
            ]
            plan = self.plan(f"Cloud metered {c.ref}", "usage-based", lines, cur)
            self.assign(c, plan, first)
            self.nightly(c, "egress", first, last, 10, 120, skip=0.2)
            self.snapshots(c, "vm-host", first, last, rng.randint(3, 14), every=(2, 6), hour=12)
            self.nightly(c, "backup-storage", first, last, 5, 40, skip=0.1)
            c.notes.append(f"usage-based ({cur}): egress graduated, VMs volume (twa), backup package with included")
        elif archetype == "advance":
            cur = self.plan_currency(c)
            lines = [
                self.line("managed-services", cur),
                self.line("site-licence", cur, quantity=str(rng.randint(3, 12))),
                self.line("backup-storage", cur, pricing=self.unit_pricing("backup-storage", cur)),
            ]
            plan = self.plan(f"Managed advance {c.ref}", "hybrid", lines, cur, timing="advance")
            # from the first month: a cycle before the platform's first close was never charged in advance
            start = self.months[0] if rng.random() < 0.7 else self.mid(0, 4, 20)
            a = self.assign(c, plan, start)
            self.nightly(c, "backup-storage", first, last, 10, 60)
            c.notes.append(f"advance-billed fixed fees ({cur}) from {start}")
            if len(self.months) > 1 and rng.random() < 0.5:
                j = rng.randrange(1, len(self.months))
                off, on = self.mid(j, 3, 12), self.mid(j, 14, 24)
                self.suspend(c, j, off, on, assignment=a)
            self.discount(
                f"{c.ref} advance promo",
                "percentage",
                rng.choice(["5", "7.5", "10"]),
                company=c,
                plan=plan,
                valid_from=self.mid(rng.randrange(len(self.months)), 4, 24),
            )
        elif archetype == "newcomer":
            j = rng.randrange(1, len(self.months)) if len(self.months) > 1 else 0
            start = self.months[j] if rng.random() < 0.5 else self.mid(j, 3, 20)
            cur = self.plan_currency(c)
            plan = self.managed_plan(c, cur, name=f"Onboarding {c.ref}")
            self.assign(c, plan, start, known=j)
            before = self.months[j] - timedelta(days=4 if self.months[j] == start else 0)
            if start != self.months[j]:
                before = start - timedelta(days=rng.randint(3, 9))
            self.managed_records(c, before, last)
            c.notes.append(f"new client from {start} (counts reported from {before})")
        elif archetype == "plan-change":
            j = rng.randrange(1, len(self.months)) if len(self.months) > 1 else 0
            switch = self.mid(j, 5, 22)
            cur = self.plan_currency(c)
            old = self.plan(
                f"Devices basic {c.ref}",
                "hybrid",
                [
                    self.line("managed-services", cur),
                    self.line("rmm-device", cur, pricing=self.unit_pricing("rmm-device", cur)),
                    self.line("m365-seat", cur, included_quantity="5", pricing=self.unit_pricing("m365-seat", cur)),
                ],
                cur,
            )
            new = self.plan(
                f"Devices plus {c.ref}",
                "hybrid",
                [
                    self.line("support-desk", cur),
                    self.line("rmm-device", cur, pricing=self.tiered("rmm-device", cur, "volume", [20, 50])),
                    self.line("m365-seat", cur, included_quantity="10", pricing=self.unit_pricing("m365-seat", cur)),
                ],
                cur,
            )
            a = self.assign(c, old, first)
            if j == 0:
                a["end_date"] = switch.isoformat()
                self.assign(c, new, switch)
            else:
                self.end_assignment(c, a, switch, j, "plan change")
                self.assign(c, new, switch, known=j)
            self.snapshots(c, "rmm-device", first, last, rng.randint(15, 60), every=(1, 3))
            self.snapshots(c, "m365-seat", first, last, rng.randint(8, 30), every=(5, 8), hour=7)
            c.notes.append(f"plan change on {switch}: {old['name']} -> {new['name']} ({cur})")
        elif archetype == "multi-plan":
            b = self.base
            general = self.plan(
                f"Essentials {c.ref}",
                "hybrid",
                [
                    self.line("managed-services", b),
                    self.line("remote-support", b, custom_rate=self.money("90", "100", b)),
                ],
                b,
            )
            custom = self.plan(
                f"Custom support {c.ref}",
                "time-based",
                [
                    self.line(
                        "remote-support", b, rounding_increment_minutes=15, custom_rate=self.money("70", "85", b)
                    ),
                    self.line(
                        "onsite-engineer", b, rounding_increment_minutes=15, custom_rate=self.money("100", "115", b)
                    ),
                ],
                b,
                custom_for=c,
            )
            scoped = self.plan(
                f"Projects {c.ref}",
                "time-based",
                [
                    self.line("support-desk", b),
                    self.line(
                        "onsite-engineer", b, rounding_increment_minutes=30, custom_rate=self.money("130", "150", b)
                    ),
                    self.line("project-work", b, rounding_increment_minutes=15),
                ],
                b,
            )
            self.assign(c, general, first)
            self.assign(c, custom, first)
            self.assign(c, scoped, first, scope="support")
            self.time_entries(c, ["remote-support", "onsite-engineer", "project-work"], first, last, (5, 10))
            c.notes.append("three plans: essentials (template), custom support (custom), projects (scoped to support)")
        elif archetype == "suspended":
            cur = self.plan_currency(c)
            plan = self.plan(
                f"Care {c.ref}",
                "hybrid",
                [
                    self.line("managed-services", cur),
                    self.line("support-desk", cur),
                    self.line("backup-storage", cur, pricing=self.unit_pricing("backup-storage", cur)),
                    self.line("remote-support", cur, rounding_increment_minutes=15),
                ],
                cur,
            )
            a = self.assign(c, plan, first)
            self.nightly(c, "backup-storage", first, last, 10, 50)
            self.time_entries(c, ["remote-support"], first, last, (3, 8))
            j = rng.randrange(len(self.months))
            off, on = self.mid(j, 3, 12), self.mid(j, 14, 26)
            scope = rng.choice(["client", "assignment", "service"])
            self.suspend(
                c,
                j,
                off,
                on,
                assignment=a if scope == "assignment" else None,
                service="support-desk" if scope == "service" else None,
            )
        elif archetype == "leaving":
            cur = self.plan_currency(c)
            plan = self.managed_plan(c, cur, name=f"Managed {c.ref}")
            a = self.assign(c, plan, first)
            j = len(self.months) - 1
            leave = self.mid(j, 5, 22)
            if j == 0:
                a["end_date"] = leave.isoformat()
            else:
                self.end_assignment(c, a, leave, j, "leaving")
            self.managed_records(c, first, last)
            c.notes.append(f"{plan['name']} ({cur}) until {leave}; its tools keep reporting after")
        if c.currency != self.base:
            c.notes.append(f"invoiced in {c.currency}")

    def suspend(
        self,
        c: Client,
        j: int,
        off: date,
        on: date,
        *,
        assignment: dict[str, Any] | None = None,
        service: str | None = None,
    ) -> None:
        scope: dict[str, Any] = {}
        what = "client"
        if assignment:
            scope["assignment_id"] = assignment["assignment_id"]
            what = "assignment"
        if service:
            scope["service_id"] = self.service_ids[service]
            what = f"service {service}"
        self.statuses.append(
            StatusChange(
                j,
                c.company_id,
                {"status": "suspended", "effective_date": off.isoformat(), "reason": "unpaid invoices"} | scope,
            )
        )
        self.statuses.append(
            StatusChange(
                j, c.company_id, {"status": "active", "effective_date": on.isoformat(), "reason": "paid up"} | scope
            )
        )
        c.notes.append(f"{what} suspended {off} to {on}")

    # -- the month's extras ------------------------------------------------------------------------------------
    def discounts(self) -> None:
        rng = self.rng
        tm = self.plans.get("Time and materials")
        if tm:
            self.discount("T&M loyalty", "percentage", rng.choice(["5", "10"]), plan=tm)
        self.discount(
            "Backup promo",
            "percentage",
            rng.choice(["10", "15"]),
            service="backup-storage",
            valid_to=self.mid(len(self.months) - 1),
        )
        if len(self.months) > 1:  # agreed at the start of a later month, from a day inside it
            j = rng.randrange(1, len(self.months))
            c = rng.choice([x for x in self.clients if x.archetype in ("managed", "tm", "suspended", "multi-plan")])
            start = self.mid(j, 2, 20)
            self.discount(f"{c.ref} goodwill", "percentage", "7.5", company=c, valid_from=start, known=j)
            c.notes.append(f"7.5 % from {start} (agreed {self.months[j]:%b %Y})")
        # a discount window boundary inside every month, on a client active then
        for i in range(len(self.months)):
            c = self.rng.choice(
                [x for x in self.clients if x.archetype in ("managed", "tm", "metered", "retainer", "multi-plan")]
            )
            start = self.mid(i, 3, 20)
            end = self.mid(i + 1, 2, 20) if i + 1 < len(self.months) and rng.random() < 0.5 else None
            value = rng.choice(["5", "10", "12.5", "15", "20"])
            if rng.random() < 0.15:
                value = "25"  # over the default rule: the billing manager approves it
            self.discount(f"{c.ref} window {i}", "percentage", value, company=c, valid_from=start, valid_to=end)
            c.notes.append(f"{value} % from {start}" + (f" to {end}" if end else ""))
        for c in rng.sample(self.clients, k=min(2, len(self.clients))):
            amount = min(Decimal(rng.randint(2000, 15000)) / 100 * SCALE[c.currency], Decimal(500))
            amount = amount.quantize(Decimal(1).scaleb(-MINOR[c.currency]), rounding=ROUND_HALF_UP)
            start = self.months[rng.randrange(len(self.months))]
            self.discount(
                f"{c.ref} credit",
                "fixed_amount",
                str(amount),
                company=c,
                currency=c.currency,
                valid_from=start,
                valid_to=self._add_months(start, 1),
            )
            c.notes.append(f"fixed {amount} {c.currency} off in {start:%b %Y}")

    def extras(self) -> None:
        """Duplicates, a malformed record each month, late records, and the service added midway."""
        rng = self.rng
        months = len(self.months)
        by_month: dict[int, list[Record]] = {}
        for r in self.records:
            by_month.setdefault(r.month, []).append(r)
        for i in range(months):
            pool = [r for r in by_month.get(i, []) if isinstance(r.value, dict)]
            for r in rng.sample(pool, k=min(3, len(pool))):
                self.records.append(Record(r.topic, r.key, r.value, r.month, 2, "duplicate"))
            usage = [r for r in pool if r.topic == USAGE]
            if usage:
                bad = dict(rng.choice(usage).value)  # type: ignore[arg-type]
                bad["event_id"] = self.next_id("bad")
                bad["source"] = "legacy-script"
                bad["quantity"] = int(Decimal(str(bad["quantity"])))
                self.records.append(
                    Record(USAGE, f"{self.tenant}:{bad['company_ref']}", json.dumps(bad).encode(), i, 1, "malformed")
                )
        # late: a record of month i published during month i + 1 (after month i closed)
        for i in range(months - 1):
            for c in self.clients:
                if c.archetype == "tm" and rng.random() < 0.7:
                    day = self.mid(i, 15, 26)
                    self.entry(
                        c,
                        rng.choice(["remote-support", "onsite-engineer"]),
                        "tech.ana",
                        self.at(day, 10, 30),
                        rng.choice([30, 45, 60, 95]),
                        month=i + 1,
                        note="late",
                    )
                if c.archetype in ("managed", "metered") and rng.random() < 0.6:
                    day = self.mid(i, 10, 25)
                    if c.archetype == "managed":
                        self.usage(
                            c,
                            "m365-seat",
                            str(rng.randint(10, 60)),
                            self.at(day, 12, 5),
                            "snapshot",
                            month=i + 1,
                            note="late",
                            source="m365-portal",
                        )
                    else:
                        self.usage(
                            c,
                            "egress",
                            str(rng.randint(50, 400)),
                            self.at(day, 12, 5),
                            "delta",
                            month=i + 1,
                            note="late",
                        )
                # one time service on the plan: a late entry then changes one service's overage only
                one_service = len(self.plans[f"Retainer {c.ref}"]["lines"]) == 2 if c.archetype == "retainer" else False
                if one_service and rng.random() < 0.7:
                    day = self.mid(i, 18, 26)
                    start = date.fromisoformat(c.assignments[0]["start_date"])
                    if day >= start:
                        self.entry(
                            c,
                            "retainer-support",
                            "tech.ben",
                            self.at(day, 14, 0),
                            rng.choice([60, 120, 180]),
                            month=i + 1,
                            note="late",
                        )
        # near local midnight at each month boundary
        for i in range(months):
            for c in self.clients:
                if c.archetype in ("tm", "multi-plan") and rng.random() < 0.6:
                    last_day = self.month_end(i) - timedelta(days=1)
                    self.entry(c, "remote-support", "tech.ben", self.at(last_day, 23, 40), 35)
                if c.archetype in ("managed", "suspended") and rng.random() < 0.6 and i + 1 < months:
                    self.usage(c, "backup-storage", "7.5", self.at(self.months[i + 1], 0, 5), "delta")
        # a service the catalog does not have yet: its records wait unmapped until it and the plan line arrive
        managed = [c for c in self.clients if c.archetype == "managed"]
        if managed:
            c = managed[0]
            plan = next(p for p in self.doc["plans"] if p["plan_id"] == c.assignments[0]["plan_id"])
            j = 1 if months > 1 else 0
            halfway = self.months[j] + timedelta(days=13)
            for day in self.days(j):
                qty = str(rng.randint(50, 300))
                phase = 1 if day <= halfway else 2
                self.usage(
                    c,
                    ADDED_MIDWAY,
                    qty,
                    self.at(day, 2, 30),
                    "delta",
                    month=j,
                    phase=phase,
                    note="unmapped" if phase == 1 else "",
                )
            line = self.line(ADDED_MIDWAY, plan["currency"], pricing=self.unit_pricing(ADDED_MIDWAY, plan["currency"]))
            self.changes.append(
                CatalogChange(j, 2, "services", self.added_midway, f"{ADDED_MIDWAY} added to the catalog")
            )
            self.changes.append(
                CatalogChange(
                    j, 2, "plans", plan | {"lines": [*plan["lines"], line]}, f"{ADDED_MIDWAY} added to {plan['name']}"
                )
            )
            c.notes.append(f"{ADDED_MIDWAY} added midway in {self.months[j]:%b %Y}")

    def taxes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        since = "2020-01-01"
        rows = [
            ("GB", None, "VAT", "20", False, 0),
            ("IE", None, "VAT", "23", False, 0),
            ("US-TX", None, "TX State Sales Tax", "6.25", False, 0),
            ("DE", None, "VAT", "19", False, 0),
            ("DE", "training", "VAT", "7", False, 0),
            ("JP", None, "Consumption tax", "10", False, 0),
            ("CA", None, "GST", "5", False, 1),
            ("CA-QC", None, "QST", "9.975", True, 2),
        ]
        rates = [
            {
                "tax_rate_id": self.uid(f"tax:{r}:{cat}:{name}"),
                "region": r,
                "name": name,
                "rate": rate,
                "valid_from": since,
                "compound": compound,
                "apply_order": order,
            }
            | ({"tax_category": cat} if cat else {})
            for r, cat, name, rate, compound, order in rows
        ]
        if len(self.months) > 1 and self.rng.random() < 0.5:
            # a change in law: Irish VAT down to 21 % from the first day of the second month (the invoice date decides)
            rates.append(
                {
                    "tax_rate_id": self.uid("tax:IE:21"),
                    "region": "IE",
                    "name": "VAT",
                    "rate": "21",
                    "valid_from": self.months[1].isoformat(),
                    "compound": False,
                    "apply_order": 0,
                }
            )
        exemptions = []
        pool = [c for c in self.clients if c.archetype not in ("newcomer",)]
        whole = self.rng.choice(pool)
        exemptions.append(
            {
                "exemption_id": self.uid("exempt:whole"),
                "company_id": whole.company_id,
                "reason": "Registered charity, certificate 2291",
                "valid_from": "2024-01-01",
            }
        )
        whole.notes.append("tax-exempt (charity)")
        tms = [c for c in self.clients if c.archetype == "tm" and c is not whole]
        if tms:
            exemptions.append(
                {
                    "exemption_id": self.uid("exempt:training"),
                    "company_id": tms[0].company_id,
                    "tax_category": "training",
                    "reason": "Education exemption",
                    "valid_from": "2024-01-01",
                }
            )
            tms[0].notes.append("training exempt from tax")
        return rates, exemptions

    def exchange_rates(self) -> list[ExchangeRate]:
        out = []
        for code in CURRENCIES:
            if code == self.base:
                continue
            mid = SCALE[code] / SCALE[self.base]
            places = 2 if code == "JPY" else 4
            out.append(ExchangeRate(code, self.months[0] - timedelta(days=20), d2(mid, places)))
            for i in range(len(self.months)):
                wobble = Decimal(self.rng.randint(-300, 300)) / 10000
                rate = d2(mid * (1 + wobble), places)
                day = self.month_end(i) - timedelta(days=self.rng.choice([0, 0, 1, 3, 9]))
                if self.rng.random() < 0.3:
                    day = self.month_end(i)  # dated the issue date itself
                out.append(ExchangeRate(code, day, rate))
                if self.rng.random() < 0.3:  # a rate dated the day after the issue date: not for that invoice
                    out.append(
                        ExchangeRate(code, self.month_end(i) + timedelta(days=1), d2(mid * Decimal("1.05"), places))
                    )
        return out

    def build(self) -> Scenario:
        self.base_catalog()
        archetypes = ARCHETYPES[: self.n_clients] + [
            self.rng.choice(ARCHETYPES) for _ in range(self.n_clients - len(ARCHETYPES))
        ]
        for n, archetype in enumerate(archetypes, 1):
            self.client(n, archetype)
        self.discounts()
        self.extras()
        rates, exemptions = self.taxes()
        return Scenario(
            seed=self.seed,
            tenant_id=self.tenant,
            name=f"Sim MSP {self.seed}",
            timezone=self.tz,
            base_currency=self.base,
            months=self.months,
            catalog=self.doc,
            changes=self.changes,
            statuses=self.statuses,
            tax_rates=rates,
            exemptions=exemptions,
            currencies=[c for c in CURRENCIES if c != self.base],
            exchange_rates=self.exchange_rates(),
            records=self.records,
            clients={c.ref: "; ".join(c.notes) for c in self.clients},
        )


def generate(seed: int, *, clients: int = 12, months: int = 3, tenant_id: str | None = None) -> Scenario:
    """The scenario of ``seed``. ``tenant_id`` (default: derived from the seed) lets the same scenario run again
    on a stack that already has it."""
    return Builder(seed, clients, months, tenant_id).build()
