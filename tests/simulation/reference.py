"""The reference model: what every `invoice.finalized` of a scenario must say, from docs/billing-rules.md.

It imports nothing from ``services/`` or ``shared/``: its own half-up rounding, minor units, tax, exchange,
discount and pricing arithmetic, on exact fractions. Section numbers (§n) are those of docs/billing-rules.md;
where that page defers to a README (pricing models, rollover, rate precedence, exchange rates) the README's
rule is followed, and where a rule is ambiguous the reading an MSP would expect is taken and marked
**READING** here (listed in tests/simulation/README.md).

It models the timeline month by month: what rating knew at each close (records published by then, the
catalog and client statuses as changed by then), late records of a closed month landing in the open one.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction as F
from typing import Any
from zoneinfo import ZoneInfo

from tests.simulation.scenario import Scenario

MINOR_UNITS = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0, "CAD": 2, "AUD": 2, "CHF": 2, "BHD": 3}
ZERO = F(0)
SECOND = timedelta(seconds=1)


# -- arithmetic ----------------------------------------------------------------------------------------------
def frac(text: Any) -> F:
    return F(Decimal(str(text)))


def round_half_up(x: F, places: int) -> F:
    """Half-up (away from zero on a tie) to ``places`` decimals."""
    scale = 10**places
    n = abs(x) * scale
    whole = math.floor(n + F(1, 2))
    return F(whole if x >= 0 else -whole, scale)


def rhu(x: F, currency: str) -> F:
    return round_half_up(x, MINOR_UNITS[currency])


def rhu4(x: F) -> F:
    """The quantity boundary."""
    return round_half_up(x, 4)


def round_sig(x: F, digits: int = 15) -> F:
    """Half-up to ``digits`` significant digits (derived exchange rates)."""
    if x == 0:
        return x
    e = math.floor(math.log10(abs(x)))
    while 10**e > abs(x):  # log10 of a fraction can be off by one
        e -= 1
    while 10 ** (e + 1) <= abs(x):
        e += 1
    places = digits - 1 - e
    if places >= 0:
        return round_half_up(x, places)
    unit = F(10 ** (-places))
    return round_half_up(x / unit, 0) * unit


def dec(x: F, places: int | None = None) -> Decimal:
    """A fraction as a decimal: money at ``places``; a quantity exactly when it terminates, else to 20 places."""
    value = Decimal(x.numerator) / Decimal(x.denominator)
    if places is not None:
        return value.quantize(Decimal(1).scaleb(-places))
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return value.quantize(Decimal("1e-20"))
    text = format(value.normalize(), "f")
    return Decimal(text)


def allocate(total: F, weights: Sequence[F], currency: str) -> list[F]:
    """``total`` (a whole number of minor units) over ``weights`` by largest remainder, ties to the earlier."""
    unit = F(1, 10 ** MINOR_UNITS[currency])
    whole = sum(weights, ZERO)
    if whole <= 0 or total == 0:
        return [ZERO for _ in weights]
    raw = [total * w / whole for w in weights]
    floors = [math.floor(r / unit) * unit for r in raw]
    left = round((total - sum(floors, ZERO)) / unit)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += unit
    return floors


# -- the catalog as known at a time ---------------------------------------------------------------------------
@dataclass
class Catalog:
    companies: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]
    plans: dict[str, dict[str, Any]]
    bundles: dict[str, dict[str, Any]]
    assignments: list[dict[str, Any]]
    discounts: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]  # by user_ref

    def service_by_code(self, code: str) -> dict[str, Any] | None:
        return next((s for s in self.services.values() if s["code"] == code), None)

    def company_by_ref(self, ref: str) -> dict[str, Any] | None:
        return next((c for c in self.companies.values() if c["company_ref"] == ref), None)


KEYS = {
    "companies": "company_id",
    "services": "service_id",
    "plans": "plan_id",
    "bundles": "bundle_id",
    "assignments": "assignment_id",
    "discounts": "discount_id",
    "users": "user_id",
}


def catalog_at(s: Scenario, month: int) -> Catalog:
    """The catalog after every change made up to the end of ``month`` (both phases)."""
    state: dict[str, dict[str, dict[str, Any]]] = {
        coll: {e[key]: e for e in s.catalog.get(coll, [])} for coll, key in KEYS.items()
    }
    for change in s.changes:
        if change.month <= month:
            state[change.collection][change.body[KEYS[change.collection]]] = change.body
    return Catalog(
        companies=state["companies"],
        services=state["services"],
        plans=state["plans"],
        bundles=state["bundles"],
        assignments=list(state["assignments"].values()),
        discounts=list(state["discounts"].values()),
        users={u["user_ref"]: u for u in state["users"].values() if u.get("user_ref")},
    )


def in_force(a: dict[str, Any], day: date) -> bool:
    """§1.2: start_date <= day < end_date."""
    end = a.get("end_date")
    return date.fromisoformat(a["start_date"]) <= day and (end is None or day < date.fromisoformat(end))


def status_on(history: Sequence[dict[str, Any]], day: date, assignment_id: str | None, service_id: str | None) -> str:
    """§1.5: the client's, the assignment's and the service's own latest status on ``day`` (first day
    inclusive; later recorded wins on one date); the most restrictive of the three."""

    def latest(changes: list[tuple[int, dict[str, Any]]]) -> str:
        found = [
            (date.fromisoformat(c["effective_date"]), i, c["status"])
            for i, c in changes
            if date.fromisoformat(c["effective_date"]) <= day
        ]
        return max(found)[2] if found else "active"

    indexed = list(enumerate(history))
    scopes = [
        [(i, c) for i, c in indexed if not c.get("assignment_id") and not c.get("service_id")],
        [(i, c) for i, c in indexed if assignment_id and c.get("assignment_id") == assignment_id],
        [(i, c) for i, c in indexed if service_id and c.get("service_id") == service_id and not c.get("assignment_id")],
    ]
    found = {latest(scope) for scope in scopes}
    for status in ("cancelled", "suspended"):
        if status in found:
            return status
    return "active"


# -- records ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rec:
    seq: int
    kind: str  # time, delta, snapshot
    company_ref: str
    code: str
    at: datetime  # UTC
    day: date  # tenant-local
    quantity: F  # usage quantity, or minutes for time
    published: int
    user_ref: str = ""
    billable: bool = True


def parse_records(s: Scenario) -> list[Rec]:
    """Every record the platform should keep: malformed ones are dead-lettered, a duplicate (same id, same
    content) is the same record. A record names its client by the client's ref, or by the ref its source knows
    the client by (``refs``); ``Rec.company_ref`` is the client's own."""
    tz = ZoneInfo(s.timezone)
    refs = {(x["source"], x["ref"]): c["company_ref"] for c in s.catalog["companies"] for x in c.get("refs", [])}
    seen: set[tuple[str, str, str | None]] = set()
    out: list[Rec] = []
    for n, r in enumerate(s.records):
        if isinstance(r.value, bytes):
            continue
        v = r.value
        key = (r.topic, v["source"], v.get("event_id") or v.get("entry_id"))
        if key in seen:
            continue
        seen.add(key)
        client = refs.get((v["source"], v["company_ref"]), v["company_ref"])
        if r.topic == "billing.time-entries.v1":
            start = datetime.fromisoformat(v["start_time"]).astimezone(UTC)
            end = datetime.fromisoformat(v["end_time"]).astimezone(UTC)
            out.append(
                Rec(
                    n,
                    "time",
                    client,
                    v["service_ref"],
                    start,
                    start.astimezone(tz).date(),
                    F((end - start) // SECOND, 60),
                    r.month,
                    v["user_ref"],
                    v.get("billable", True),
                )
            )
        else:
            at = datetime.fromisoformat(v["occurred_at"]).astimezone(UTC)
            out.append(
                Rec(
                    n,
                    v.get("kind", "delta"),
                    client,
                    v["service_ref"],
                    at,
                    at.astimezone(tz).date(),
                    frac(v["quantity"]),
                    r.month,
                )
            )
    return out


# -- pricing ---------------------------------------------------------------------------------------------------
def terms_on(line: dict[str, Any], day: date) -> dict[str, Any]:
    """The line's terms in force on ``day``: the latest ``prices`` entry on or before it, else its own."""
    entries = [p for p in line.get("prices", []) if date.fromisoformat(p["effective_from"]) <= day]
    return max(entries, key=lambda p: p["effective_from"]) if entries else line


def flat_rate(terms: dict[str, Any], service: dict[str, Any]) -> F | None:
    """A single unit rate (custom rate, per-unit price, else the service's default), None for a tiered model."""
    pricing = terms.get("pricing")
    if pricing:
        return frac(pricing["unit_price"]) if pricing["model"] == "per_unit" else None
    if terms.get("custom_rate") is not None:
        return frac(terms["custom_rate"])
    return frac(service["default_rate"])


@dataclass(frozen=True)
class Piece:
    quantity: F
    unit_price: F
    label: str  # what tells pieces of one model apart (a tier, a flat fee, packages)

    @property
    def amount(self) -> F:
        return self.quantity * self.unit_price


def model_pieces(terms: dict[str, Any], service: dict[str, Any], q: F) -> list[Piece]:
    """The rating README's models: per_unit, graduated, volume, package (a flat rate otherwise)."""
    if q <= 0:
        return []
    pricing = terms.get("pricing")
    if not pricing or pricing["model"] == "per_unit":
        rate = flat_rate(terms, service)
        assert rate is not None
        return [Piece(q, rate, "")]
    if pricing["model"] == "package":
        packages = math.ceil(q / frac(pricing["package_size"]))
        return [Piece(F(packages), frac(pricing["package_price"]), "package")]
    tiers = pricing["tiers"]
    pieces = []
    if pricing["model"] == "graduated":
        # tier i holds units in (up_to[i-1], up_to[i]]; its flat fee once when the quantity enters it
        lower = ZERO
        for k, tier in enumerate(tiers):
            upper = frac(tier["up_to"]) if tier["up_to"] is not None else None
            if q <= lower:
                break
            units = (min(q, upper) if upper is not None else q) - lower
            pieces.append(Piece(units, frac(tier["unit_price"]), f"tier {k + 1}"))
            if tier.get("flat_fee") and frac(tier["flat_fee"]):
                pieces.append(Piece(F(1), frac(tier["flat_fee"]), f"tier {k + 1} fee"))
            if upper is None:
                break
            lower = upper
        return pieces
    # volume: the tier containing the total prices every unit, plus its flat fee
    for k, tier in enumerate(tiers):
        if tier["up_to"] is None or q <= frac(tier["up_to"]):
            pieces.append(Piece(q, frac(tier["unit_price"]), f"tier {k + 1}"))
            if tier.get("flat_fee") and frac(tier["flat_fee"]):
                pieces.append(Piece(F(1), frac(tier["flat_fee"]), f"tier {k + 1} fee"))
            return pieces
    raise AssertionError("volume tiers end with up_to null")


def charged_on_arrival(line: dict[str, Any], service: dict[str, Any], day: date) -> bool:
    """§3: a delta on a line priced per unit with nothing included is charged on arrival."""
    return frac(line.get("included_quantity", "0")) == 0 and flat_rate(terms_on(line, day), service) is not None


# -- charges ---------------------------------------------------------------------------------------------------
@dataclass
class Charge:
    company_id: str
    kind: str
    service_ref: str
    service_id: str | None  # for service-scope discounts
    plan_id: str
    currency: str
    quantity: F
    unit_price: F
    amount: F
    days: tuple[date, ...]  # service days (§7.2)
    label: str = ""
    own_line: bool = False  # a prorated piece or an adjustment is a line of its own
    # prorated shares inside the amount, each (P, a, b, N): days [a, b) of an N-day cycle priced P (P < 0: one
    # taken off, in a settlement); converted by the remainder rule (§7.1). ``whole``: the rest of the amount.
    pieces: tuple[tuple[F, int, int, int], ...] = ()
    whole: F | None = None
    note: str = ""
    unit: str = ""


@dataclass
class Line:
    kind: str
    service_ref: str
    plan: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    discount_amount: Decimal
    net_amount: Decimal
    tax_amount: Decimal
    total: Decimal
    note: str = ""
    unit: str = ""


@dataclass
class Invoice:
    company_ref: str
    period_start: date
    period_end: date
    currency: str
    lines: list[Line]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal


def days_between(start: date, end: date) -> tuple[date, ...]:
    return tuple(start + timedelta(days=k) for k in range((end - start).days))


def add_months(d: date, k: int) -> date:
    m = d.month - 1 + k
    return date(d.year + m // 12, m % 12 + 1, 1)


@dataclass
class BucketState:
    charged: dict[tuple[date, str], F] = field(default_factory=dict)  # (bucket period start, service) -> overage


class Model:
    """The month-by-month timeline of one scenario."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.tz = ZoneInfo(s.timezone)
        self.records = parse_records(s)
        self.n = len(s.months)
        self.periods = [(s.months[i], s.month_end(i)) for i in range(self.n)]
        # rule key -> total charged so far (plan currency, exact), for late re-pricing
        self.close_charged: dict[tuple[int, str, int], F] = {}
        self.advance_runs: dict[tuple[str, int, int], list[tuple[date, date]]] = {}
        self.bucket_charged: dict[tuple[str, date, str], F] = {}
        self.bucket_settled: set[tuple[str, date]] = set()  # bucket periods settled at a close

    # -- time ------------------------------------------------------------------------------------------------
    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)

    def statuses(self, company_id: str, month: int) -> list[dict[str, Any]]:
        return [st.body for st in self.s.statuses if st.company_id == company_id and st.month <= month]

    def active(self, company_id: str, day: date, month: int, assignment_id: str | None, service_id: str | None) -> bool:
        return status_on(self.statuses(company_id, month), day, assignment_id, service_id) == "active"

    # -- §1 routing ------------------------------------------------------------------------------------------
    @staticmethod
    def could_price(cat: Catalog, plan: dict[str, Any], service_id: str) -> tuple[int, dict[str, Any]] | None:
        for k, line in enumerate(plan["lines"]):
            if line.get("service_id") == service_id:
                return k, line
            bundle = cat.bundles.get(line.get("bundle_id") or "")
            if bundle and service_id in bundle["service_ids"]:
                return k, line
        return None

    def route(
        self, cat: Catalog, company_id: str, service: dict[str, Any], day: date
    ) -> tuple[dict[str, Any], int, dict[str, Any]] | None:
        """§1.3: the one assignment in force that prices the service on ``day``."""
        category = service.get("category_id")
        found = []
        for a in cat.assignments:
            if a["company_id"] != company_id or not in_force(a, day):
                continue
            scope = a.get("service_category")
            if scope is not None and scope != category:
                continue
            plan = cat.plans[a["plan_id"]]
            hit = self.could_price(cat, plan, service["service_id"])
            if hit is None:
                continue
            key = (
                scope is None,
                not plan.get("is_custom", False),
                -date.fromisoformat(a["start_date"]).toordinal(),
                a["assignment_id"],
            )
            found.append((key, a, hit))
        if not found:
            return None
        _, a, (k, line) = min(found, key=lambda x: x[0])
        return a, k, line

    # -- §2 time -----------------------------------------------------------------------------------------------
    @staticmethod
    def billed_minutes(line: dict[str, Any], minutes: F) -> F:
        inc = line.get("rounding_increment_minutes")
        if inc:
            minutes = F(math.ceil(minutes / inc) * inc)
        low = line.get("minimum_minutes")
        if low:
            minutes = max(minutes, F(low))
        return minutes

    @staticmethod
    def time_rate(
        cat: Catalog, plan: dict[str, Any], line: dict[str, Any], service: dict[str, Any], r: Rec
    ) -> F | None:
        """§2 / rating README: the line's price that day, else the technician's rate in the plan's currency, else
        the service's default rate in the plan's currency."""
        terms = terms_on(line, r.day)
        pricing = terms.get("pricing")
        if pricing and pricing["model"] == "per_unit":
            return frac(pricing["unit_price"])
        if terms.get("custom_rate") is not None:
            return frac(terms["custom_rate"])
        user = cat.users.get(r.user_ref)
        if user and user.get("hourly_rate") is not None and user.get("currency") == plan["currency"]:
            return frac(user["hourly_rate"])
        if service["currency"] == plan["currency"]:
            return frac(service["default_rate"])
        return None

    # -- per-record charges (time, deltas charged on arrival) -------------------------------------------------
    def per_record(self, i: int) -> list[Charge]:
        cat = catalog_at(self.s, i)
        out = []
        for r in self.records:
            if r.published != i or r.kind == "snapshot":
                continue
            company, service = cat.company_by_ref(r.company_ref), cat.service_by_code(r.code)
            if company is None or service is None:
                continue
            routed = self.route(cat, company["company_id"], service, r.day)
            if routed is None:
                continue  # §1.4: not billed
            a, _, line = routed
            if line.get("bundle_id"):
                continue  # in_bundle
            plan = cat.plans[a["plan_id"]]
            if not self.active(company["company_id"], r.day, i, a["assignment_id"], service["service_id"]):
                continue  # §1.5
            late = " (late)" if self.month_of(r.day) < i else ""
            if r.kind == "time":
                if not r.billable or plan.get("bucket"):
                    continue
                minutes = self.billed_minutes(line, r.quantity)
                rate = self.time_rate(cat, plan, line, service, r)
                if rate is None:
                    continue
                out.append(
                    Charge(
                        company["company_id"],
                        "time",
                        r.code,
                        service["service_id"],
                        plan["plan_id"],
                        plan["currency"],
                        minutes / 60,
                        rate,
                        minutes * rate / 60,
                        (r.day,),
                        note=plan["name"] + late,
                        unit="hour",
                    )
                )
            elif charged_on_arrival(line, service, r.day):
                rate = flat_rate(terms_on(line, r.day), service)
                assert rate is not None
                out.append(
                    Charge(
                        company["company_id"],
                        "usage",
                        r.code,
                        service["service_id"],
                        plan["plan_id"],
                        plan["currency"],
                        r.quantity,
                        rate,
                        r.quantity * rate,
                        (r.day,),
                        note=plan["name"] + late,
                        unit=service["unit"],
                    )
                )
        return out

    def month_of(self, day: date) -> int:
        for i, (start, end) in enumerate(self.periods):
            if start <= day < end:
                return i
        return -1 if day < self.periods[0][0] else self.n

    # -- §3 usage priced at the close ---------------------------------------------------------------------------
    def aggregate(self, snaps: list[Rec], start: datetime, end: datetime, how: str) -> F | None:
        """§3 snapshots over [start, end): the carried-in count at start, then the span's counts in time order."""
        before = [r for r in snaps if r.at < start]
        inside = sorted((r for r in snaps if start <= r.at < end), key=lambda r: (r.at, r.seq))
        counts: list[tuple[datetime, F]] = []
        if before and not any(r.at == start for r in inside):
            carried = max(before, key=lambda r: (r.at, r.seq))
            counts.append((start, carried.quantity))
        counts += [(r.at, r.quantity) for r in inside]
        if not counts:
            return None
        if how == "peak":
            return max(q for _, q in counts)
        if how == "last":
            return counts[-1][1]
        # time-weighted: zero before the first count, each count until the next (or the span's end)
        total = ZERO
        for k, (at, q) in enumerate(counts):
            until = counts[k + 1][0] if k + 1 < len(counts) else end
            total += q * ((until - at) // SECOND)
        return rhu4(total / ((end - start) // SECOND))

    def close_usage(
        self, k: int, known: int, only: set[tuple[str, str]] | None = None
    ) -> dict[tuple[str, int], tuple[Charge, list[Piece]]]:
        """Period ``k``'s usage priced at close, with the records published by month ``known``: per assignment
        and line, a template charge and its pieces."""
        cat = catalog_at(self.s, known)
        p_start, p_end = self.periods[k] if k < self.n else (self.s.end, add_months(self.s.end, 1))
        out = {}
        for a in cat.assignments:
            company = cat.companies[a["company_id"]]
            a_start = date.fromisoformat(a["start_date"])
            a_end = date.fromisoformat(a["end_date"]) if a.get("end_date") else p_end
            s_day, e_day = max(p_start, a_start), min(p_end, a_end)
            if s_day >= e_day:
                continue
            plan = cat.plans[a["plan_id"]]
            for li, line in enumerate(plan["lines"]):
                service = cat.services.get(line.get("service_id") or "")
                if service is None or service["service_type"] != "Usage":
                    continue
                if only is not None and (company["company_ref"], service["code"]) not in only:
                    continue
                start, end = self.midnight(s_day), self.midnight(e_day)
                mine = [
                    r
                    for r in self.records
                    if r.published <= known and r.company_ref == company["company_ref"] and r.code == service["code"]
                ]
                deltas = ZERO
                counted = False
                for r in mine:
                    if r.kind != "delta" or not (s_day <= r.day < e_day):
                        continue
                    routed = self.route(cat, company["company_id"], service, r.day)
                    if routed is None or routed[0]["assignment_id"] != a["assignment_id"]:
                        continue
                    if charged_on_arrival(line, service, r.day):
                        continue
                    if not self.active(company["company_id"], r.day, known, a["assignment_id"], service["service_id"]):
                        continue
                    deltas += r.quantity
                    counted = True
                snaps = [r for r in mine if r.kind == "snapshot"]
                agg = self.aggregate(snaps, start, end, service.get("snapshot_aggregation") or "peak")
                if agg is None and not counted:
                    continue
                q = deltas + (agg or ZERO)
                included = frac(line.get("included_quantity", "0"))
                covered, whole = (e_day - s_day).days, (p_end - p_start).days
                if covered < whole and line.get("prorate_included", True):
                    included = rhu4(included * covered / whole)
                terms = terms_on(line, e_day - timedelta(days=1))
                pieces = model_pieces(terms, service, max(ZERO, q - included))
                template = Charge(
                    company["company_id"],
                    "usage",
                    service["code"],
                    service["service_id"],
                    plan["plan_id"],
                    plan["currency"],
                    ZERO,
                    ZERO,
                    ZERO,
                    days_between(s_day, e_day),
                    note=plan["name"],
                    unit=service["unit"],
                )
                out[a["assignment_id"], li] = (template, pieces)
        return out

    def usage_at_close(self, i: int) -> list[Charge]:
        out = []
        for (aid, li), (t, pieces) in self.close_usage(i, i).items():
            for p in pieces:
                out.append(
                    Charge(
                        t.company_id,
                        t.kind,
                        t.service_ref,
                        t.service_id,
                        t.plan_id,
                        t.currency,
                        p.quantity,
                        p.unit_price,
                        p.amount,
                        t.days,
                        label=p.label,
                        note=t.note,
                        unit=t.unit,
                    )
                )
            self.close_charged[i, aid, li] = sum((p.amount for p in pieces), ZERO)
        return out

    def late_repricing(self, i: int) -> list[Charge]:
        """§6: records of a closed period's close-priced lines, published in month ``i``: each closed period they
        change is priced again and the difference is one adjustment in the open period."""
        late = [r for r in self.records if r.published == i and r.kind != "time" and self.month_of(r.day) < i]
        out = []
        for k in range(max(0, min((self.month_of(r.day) for r in late), default=i)), i):
            touched = {(r.company_ref, r.code) for r in late if self.month_of(r.day) <= k}
            if not touched:
                continue
            for (aid, li), (t, pieces) in self.close_usage(k, i, touched).items():
                total = sum((p.amount for p in pieces), ZERO)
                before = self.close_charged.get((k, aid, li), ZERO)
                if total != before:
                    out.append(
                        Charge(
                            t.company_id,
                            t.kind,
                            t.service_ref,
                            t.service_id,
                            t.plan_id,
                            t.currency,
                            F(1),
                            total - before,
                            total - before,
                            t.days,
                            own_line=True,
                            note=f"{t.note}: adjustment of {self.periods[k][0]:%b}",
                            unit="adjustment",
                        )
                    )
                    self.close_charged[k, aid, li] = total
        return out

    # -- §4 fixed fees ---------------------------------------------------------------------------------------------
    def runs(
        self, cat: Catalog, a: dict[str, Any], target_id: str, cycle: tuple[date, date], month: int
    ) -> list[tuple[date, date]]:
        """Runs of consecutive days of ``cycle`` the assignment is in force and client, assignment and service
        are active (statuses as recorded by ``month``)."""
        out: list[tuple[date, date]] = []
        run_start = None
        for d in days_between(*cycle):
            ok = in_force(a, d) and self.active(a["company_id"], d, month, a["assignment_id"], target_id)
            if ok and run_start is None:
                run_start = d
            if not ok and run_start is not None:
                out.append((run_start, d))
                run_start = None
        if run_start is not None:
            out.append((run_start, cycle[1]))
        return out

    def fixed_pieces(
        self,
        cat: Catalog,
        a: dict[str, Any],
        li: int,
        cycle: tuple[date, date],
        runs: list[tuple[date, date]],
        note: str,
    ) -> list[Charge]:
        plan = cat.plans[a["plan_id"]]
        line = plan["lines"][li]
        kind, ref, sid, unit, price = self.fixed_target(cat, line)
        qty = frac(line.get("quantity", "1"))
        total = price * qty
        n = (cycle[1] - cycle[0]).days
        out = []
        for start, end in runs:
            if (start, end) == cycle:
                out.append(
                    Charge(
                        a["company_id"],
                        kind,
                        ref,
                        sid,
                        plan["plan_id"],
                        plan["currency"],
                        qty,
                        price,
                        total,
                        days_between(start, end),
                        note=plan["name"] + note,
                        unit=unit,
                    )
                )
            else:
                x, y = (start - cycle[0]).days, (end - cycle[0]).days
                out.append(
                    Charge(
                        a["company_id"],
                        kind,
                        ref,
                        sid,
                        plan["plan_id"],
                        plan["currency"],
                        F(1),
                        total * (y - x) / n,
                        total * (y - x) / n,
                        days_between(start, end),
                        own_line=True,
                        pieces=((total, x, y, n),),
                        whole=ZERO,
                        note=f"{plan['name']}{note} {start}..{end}",
                        unit="prorated period",
                    )
                )
        return out

    @staticmethod
    def fixed_target(cat: Catalog, line: dict[str, Any]) -> tuple[str, str, str | None, str, F]:
        if line.get("bundle_id"):
            # READING: a bundle line's service_ref is "bundle:<name>" (billing.invoices.v1 does not say)
            b = cat.bundles[line["bundle_id"]]
            return "bundle", f"bundle:{b['name']}", None, "bundle", frac(b["price"])
        service = cat.services[line["service_id"]]
        terms = line
        rate = flat_rate(terms, service)
        assert rate is not None
        return "fixed", service["code"], service["service_id"], service["unit"], rate

    def fixed_lines(self, cat: Catalog, a: dict[str, Any]) -> list[int]:
        plan = cat.plans[a["plan_id"]]
        out = []
        for li, line in enumerate(plan["lines"]):
            if line.get("bundle_id") or cat.services[line["service_id"]]["service_type"] == "Fixed":
                out.append(li)
        return out

    def fixed_fees(self, i: int) -> list[Charge]:
        cat = catalog_at(self.s, i)
        cycle = self.periods[i]
        after = (cycle[1], add_months(cycle[1], 1))
        out: list[Charge] = []
        for a in cat.assignments:
            plan = cat.plans[a["plan_id"]]
            start = date.fromisoformat(a["start_date"])
            for li in self.fixed_lines(cat, a):
                kind, ref, sid, _, price = self.fixed_target(cat, plan["lines"][li])
                target = sid or plan["lines"][li]["bundle_id"]
                runs = self.runs(cat, a, target, cycle, i)
                if plan.get("billing_timing", "arrears") == "arrears":
                    out += self.fixed_pieces(cat, a, li, cycle, runs, "")
                    continue
                # advance: this cycle settled (or charged, if it is the first), the next one charged as known now
                charged = self.advance_runs.get((a["assignment_id"], li, i))
                if start >= cycle[0] or charged is None:
                    out += self.fixed_pieces(cat, a, li, cycle, runs, "")
                else:
                    # §4: the settlement is the difference of the cycle's shares now and when charged; its prorated
                    # shares are each rounded by the remainder rule after conversion (§7.1), whole cycles are not
                    total = price * frac(plan["lines"][li].get("quantity", "1"))
                    diff = share(total, cycle, runs) - share(total, cycle, charged)
                    n = (cycle[1] - cycle[0]).days
                    whole, pieces = ZERO, []
                    for sign, side in ((1, runs), (-1, charged)):
                        for s_, e_ in side:
                            if (s_, e_) == cycle:
                                whole += sign * total
                            else:
                                pieces.append((sign * total, (s_ - cycle[0]).days, (e_ - cycle[0]).days, n))
                    if diff != 0:
                        out.append(
                            Charge(
                                a["company_id"],
                                kind,
                                ref,
                                sid,
                                plan["plan_id"],
                                plan["currency"],
                                F(1),
                                diff,
                                diff,
                                tuple(d for s, e in charged for d in days_between(s, e)),
                                own_line=True,
                                pieces=tuple(pieces),
                                whole=whole,
                                note=f"{plan['name']}: settlement of {cycle[0]:%b}",
                                unit="adjustment",
                            )
                        )
                if start < after[0]:
                    nxt = self.runs(cat, a, target, after, i)
                    self.advance_runs[a["assignment_id"], li, i + 1] = nxt
                    out += self.fixed_pieces(cat, a, li, after, nxt, " (advance)")
        return out

    # -- §5 buckets -------------------------------------------------------------------------------------------------
    def bucket_periods(self, anchor: date, period: str, upto: date) -> list[tuple[date, date]]:
        out: list[tuple[date, date]] = []
        k = 0
        while True:
            if period == "weekly":
                start, end = anchor + timedelta(weeks=k), anchor + timedelta(weeks=k + 1)
            else:
                step = {"monthly": 1, "quarterly": 3, "annually": 12}[period]
                start, end = self.add_anchor(anchor, k * step), self.add_anchor(anchor, (k + 1) * step)
            if start >= upto:
                return out
            out.append((start, end))
            k += 1

    @staticmethod
    def add_anchor(anchor: date, months: int) -> date:
        m = anchor.month - 1 + months
        year, month = anchor.year + m // 12, m % 12 + 1
        last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
        return date(year, month, min(anchor.day, last))

    def buckets(self, i: int) -> list[Charge]:
        cat = catalog_at(self.s, i)
        _, p_end = self.periods[i]
        out = []
        for a in cat.assignments:
            plan = cat.plans[a["plan_id"]]
            bucket = plan.get("bucket")
            if not bucket:
                continue
            company = cat.companies[a["company_id"]]
            a_start = date.fromisoformat(a["start_date"])
            a_end = date.fromisoformat(a["end_date"]) if a.get("end_date") else None
            periods = [
                (s, e)
                for s, e in self.bucket_periods(date.fromisoformat(company["billing_anchor"]), bucket["period"], p_end)
                if e > a_start and (a_end is None or s < a_end) and e <= p_end
                # READING: "the billing period containing their end" is the one containing their last day
            ]
            entries = []
            for r in self.records:
                if r.kind != "time" or r.published > i or not r.billable or r.company_ref != company["company_ref"]:
                    continue
                service = cat.service_by_code(r.code)
                if service is None:
                    continue
                routed = self.route(cat, company["company_id"], service, r.day)
                if routed is None or routed[0]["assignment_id"] != a["assignment_id"]:
                    continue
                if not self.active(company["company_id"], r.day, i, a["assignment_id"], service["service_id"]):
                    continue
                entries.append(r)
            entries.sort(key=lambda r: (r.at, r.seq))
            hours, rate = frac(bucket["hours"]), frac(bucket["overage_rate"])
            rollover = bucket.get("rollover") or {"policy": "none"}
            lots: list[list[Any]] = []  # [hours left, periods it may still be used in]
            for s, e in periods:
                covered = (min(e, a_end or e) - max(s, a_start)).days
                allocation = hours
                if covered < (e - s).days and bucket.get("prorate_partial_periods", True):
                    allocation = rhu4(hours * covered / (e - s).days)
                left = allocation
                over: dict[str, F] = defaultdict(lambda: ZERO)
                for r in entries:
                    if not (s <= r.day < e):
                        continue
                    need = r.quantity / 60
                    for lot in lots:  # carried hours first, oldest first
                        take = min(lot[0], need)
                        lot[0] -= take
                        need -= take
                    take = min(left, need)
                    left -= take
                    need -= take
                    if need > 0:
                        over[r.code] += need
                # rollover into the next period
                policy = rollover["policy"]
                if policy == "none":
                    lots = []
                elif policy == "carry_up_to":
                    remaining = left + sum((lot[0] for lot in lots), ZERO)
                    cap = frac(rollover["max_hours"])
                    lots = [[min(remaining, cap), 1]] if remaining > 0 else []
                else:  # expire_after: each period's unused allocation is a lot usable for `periods` further periods
                    lots = [[lot[0], lot[1] - 1] for lot in lots if lot[1] > 1 and lot[0] > 0]
                    if left > 0:
                        lots.append([left, int(rollover["periods"])])
                for code in set(over) | {
                    c for (aid, ps, c) in self.bucket_charged if aid == a["assignment_id"] and ps == s
                }:
                    key = (a["assignment_id"], s, code)
                    # §6: a period settled before (with or without overage) is re-settled: the difference is an
                    # adjustment, never a first charge
                    settled = (a["assignment_id"], s) in self.bucket_settled
                    before = self.bucket_charged.get(key, ZERO if settled else None)
                    now = over.get(code, ZERO)
                    days = days_between(s, e)
                    service = cat.service_by_code(code)
                    assert service is not None
                    if before is None:
                        if now > 0:
                            out.append(
                                Charge(
                                    company["company_id"],
                                    "bucket_overage",
                                    code,
                                    service["service_id"],
                                    plan["plan_id"],
                                    plan["currency"],
                                    now,
                                    rate,
                                    now * rate,
                                    days,
                                    note=f"{plan['name']} {s}..{e}",
                                    unit="hour",
                                )
                            )
                        self.bucket_charged[key] = now
                    elif now != before:
                        out.append(
                            Charge(
                                company["company_id"],
                                "bucket_overage",
                                code,
                                service["service_id"],
                                plan["plan_id"],
                                plan["currency"],
                                F(1),
                                (now - before) * rate,
                                (now - before) * rate,
                                days,
                                own_line=True,
                                note=f"{plan['name']} {s}..{e} re-settled",
                                unit="adjustment",
                            )
                        )
                        self.bucket_charged[key] = now
                self.bucket_settled.add((a["assignment_id"], s))
        return out

    # -- the whole timeline ------------------------------------------------------------------------------------
    def charges(self, i: int) -> list[Charge]:
        return (
            self.per_record(i) + self.late_repricing(i) + self.usage_at_close(i) + self.fixed_fees(i) + self.buckets(i)
        )


def share(total: F, cycle: tuple[date, date], runs: list[tuple[date, date]]) -> F:
    """The exact share of a cycle's fee its runs come to (§4)."""
    n = (cycle[1] - cycle[0]).days
    return sum((total * (e - s).days / n for s, e in runs), ZERO)


# -- §7 the invoice -------------------------------------------------------------------------------------------------
class Rates:
    def __init__(self, s: Scenario) -> None:
        self.base = s.base_currency
        self.rows = s.exchange_rates

    def of(self, currency: str, day: date) -> F:
        if currency == self.base:
            return F(1)
        rows = [r for r in self.rows if r.currency == currency and r.rate_date <= day]
        if not rows:
            raise KeyError(f"no {currency} rate on {day}")
        return frac(max(rows, key=lambda r: r.rate_date).rate)

    def convert(self, from_ccy: str, to_ccy: str, day: date) -> F:
        """tax-currency README: base -> X exactly; X -> base the inverse, X -> Y the cross rate, each rounded
        half-up to 15 significant digits."""
        if from_ccy == to_ccy:
            return F(1)
        if from_ccy == self.base:
            return self.of(to_ccy, day)
        if to_ccy == self.base:
            return round_sig(1 / self.of(from_ccy, day))
        return round_sig(self.of(to_ccy, day) / self.of(from_ccy, day))


def applicable(
    discounts: Iterable[dict[str, Any]], company_id: str, plan_id: str, service_id: str | None, day: date
) -> list[dict[str, Any]]:
    """Catalog's applicable_discounts: approved (the driver approves what waits), active, in their dates; a
    client's own override the plan's and service's defaults."""

    def live(d: dict[str, Any]) -> bool:
        return (
            d.get("active", True)
            and (d.get("valid_from") is None or date.fromisoformat(d["valid_from"]) <= day)
            and (d.get("valid_to") is None or day < date.fromisoformat(d["valid_to"]))
        )

    alive = [d for d in discounts if live(d)]
    own = [d for d in alive if d.get("company_id") == company_id and d.get("plan_id") in (None, plan_id)]
    defaults = [
        d
        for d in alive
        if d.get("company_id") is None
        and ((d.get("plan_id") and d["plan_id"] == plan_id) or (service_id and d.get("service_id") == service_id))
    ]
    return own or defaults


def schedule(discounts: list[dict[str, Any]], c: Charge) -> tuple[tuple[str, F], ...]:
    """§7.2: for each discount, the fraction of the charge's service days it applies on."""
    counts: dict[str, int] = defaultdict(int)
    for day in c.days:
        for d in applicable(discounts, c.company_id, c.plan_id, c.service_id, day):
            counts[d["discount_id"]] += 1
    return tuple(sorted((k, F(v, len(c.days))) for k, v in counts.items()))


@dataclass
class Draft:
    charges: list[Charge]
    sched: tuple[tuple[str, F], ...]
    converted: F = ZERO
    discount: F = ZERO


def tax_lines(s: Scenario, region: str, category: str | None, day: date) -> list[dict[str, Any]]:
    """tax-currency README: per tax name, the most specific level with a row in force on ``day``."""
    country = region.split("-")[0]
    levels = [(region, category), (region, None), (country, category), (country, None)]
    in_force = [
        r
        for r in s.tax_rates
        if date.fromisoformat(r["valid_from"]) <= day
        and (r.get("valid_to") is None or day < date.fromisoformat(r["valid_to"]))
    ]
    out = []
    for name in sorted({r["name"] for r in in_force}):
        for level in levels:
            rows = [r for r in in_force if r["name"] == name and (r["region"], r.get("tax_category")) == level]
            if rows:
                row = max(rows, key=lambda r: r["valid_from"])
                if not row.get("withdrawn"):
                    out.append(row)
                break
    return sorted(out, key=lambda r: (r.get("apply_order", 0), r["name"]))


def exempt(s: Scenario, company_id: str, category: str | None, day: date) -> bool:
    for e in s.exemptions:
        if e["company_id"] != company_id or e.get("tax_category") not in (None, category):
            continue
        if date.fromisoformat(e["valid_from"]) <= day and (
            e.get("valid_to") is None or day < date.fromisoformat(e["valid_to"])
        ):
            return True
    return False


def build_invoice(
    s: Scenario,
    cat: Catalog,
    company: dict[str, Any],
    charges: list[Charge],
    period: tuple[date, date],
    issue: date,
    rates: Rates,
) -> Invoice:
    currency = company["currency"]
    # grouping: kind, service, plan, unit price, unit, tier, currency, discount schedule; pieces and adjustments alone
    groups: dict[Any, Draft] = {}
    for n, c in enumerate(charges):
        sched = schedule(cat.discounts, c)
        key: Any = (c.kind, c.service_ref, c.plan_id, c.unit_price, c.unit, c.label, c.currency, sched)
        if c.own_line:
            key = ("own", n)
        groups.setdefault(key, Draft([], sched)).charges.append(c)
    # READING: lines come in (kind, service, unit price) order, for the largest remainder's "earlier line"
    drafts = sorted(
        groups.values(), key=lambda g: (g.charges[0].kind, g.charges[0].service_ref, g.charges[0].unit_price)
    )
    for g in drafts:
        c0 = g.charges[0]
        rate = rates.convert(c0.currency, currency, issue)
        if c0.whole is not None:  # §7.1 the remainder rule, after conversion, for each prorated share
            g.converted = c0.whole * rate
            for price, a, b, n in c0.pieces:
                g.converted += rhu(price * rate * b / n, currency) - rhu(price * rate * a / n, currency)
        else:
            g.converted = sum((c.amount for c in g.charges), ZERO) * rate
    by_id = {d["discount_id"]: d for d in cat.discounts}
    used = sorted({d for g in drafts for d, _ in g.sched}, key=lambda d: (by_id[d]["discount_type"] != "percentage", d))
    for did in used:
        d = by_id[did]
        value = frac(d["value"])
        targets = [(g, f) for g in drafts for k, f in g.sched if k == did and f > 0 and g.converted > 0]
        if d["discount_type"] == "percentage":
            # READING: a client + plan discount is plan-scoped (per line); client-wide is a client's alone
            if d.get("company_id") and not d.get("plan_id"):  # client-wide
                weights = [g.converted * f for g, f in targets]
                total = rhu(sum(weights, ZERO) * value / 100, currency)
                for (g, _), share in zip(targets, allocate(total, weights, currency), strict=True):
                    g.discount += share
            else:
                for g, f in targets:
                    g.discount += g.converted * value / 100 * f
        else:
            lefts = [g.converted - g.discount for g, _ in targets]
            unit = F(1, 10 ** MINOR_UNITS[currency])
            room = math.floor(sum(lefts, ZERO) / unit) * unit
            total = min(value, max(room, ZERO))
            for (g, _), share in zip(targets, allocate(total, lefts, currency), strict=True):
                g.discount += share
    lines = []
    places = MINOR_UNITS[currency]
    for g in drafts:
        c0 = g.charges[0]
        amount = rhu(g.converted, currency)
        net = rhu(g.converted - g.discount, currency)
        category = None
        if c0.service_id and c0.service_id in cat.services:
            category = cat.services[c0.service_id].get("tax_category")
        tax = ZERO
        if not exempt(s, company["company_id"], category, issue):
            taxed = ZERO
            for row in tax_lines(s, company["region"], category, issue):
                base = net + (taxed if row.get("compound") else ZERO)
                t = rhu(base * frac(row["rate"]) / 100, currency)
                taxed += t
            tax = taxed
        qty = sum((c.quantity for c in g.charges), ZERO)
        lines.append(
            Line(
                c0.kind,
                c0.service_ref,
                cat.plans[c0.plan_id]["name"],
                dec(qty),
                dec(c0.unit_price),
                dec(amount, places),
                dec(amount - net, places),
                dec(net, places),
                dec(tax, places),
                dec(net + tax, places),
                note=c0.note,
                unit=c0.unit,
            )
        )
    sums = [sum((getattr(ln, f) for ln in lines), Decimal(0)) for f in ("amount", "discount_amount", "tax_amount")]
    return Invoice(
        company["company_ref"],
        period[0],
        period[1],
        currency,
        lines,
        sums[0],
        sums[1],
        sums[2],
        sums[0] - sums[1] + sums[2],
    )


def expected_invoices(s: Scenario) -> dict[tuple[str, date], Invoice]:
    """Every client invoice of the scenario, by (client ref, period start)."""
    model = Model(s)
    rates = Rates(s)
    out = {}
    for i in range(model.n):
        charges = model.charges(i)
        cat = catalog_at(s, i)
        period = model.periods[i]
        by_company: dict[str, list[Charge]] = defaultdict(list)
        for c in charges:
            by_company[c.company_id].append(c)
        for company_id, mine in by_company.items():
            company = cat.companies[company_id]
            invoice = build_invoice(s, cat, company, mine, period, period[1], rates)
            if invoice.lines and invoice.total >= 0:  # a negative period is a credit note, not an invoice
                out[company["company_ref"], period[0]] = invoice
    return out


def describe(inv: Invoice) -> str:
    rows = [
        f"  {ln.kind:<15} {ln.service_ref:<22} q={ln.quantity!s:<12} amt={ln.amount!s:>10} "
        f"disc={ln.discount_amount!s:>8} net={ln.net_amount!s:>10} tax={ln.tax_amount!s:>8}  [{ln.note}]"
        for ln in inv.lines
    ]
    return "\n".join(rows)


def dump(s: Scenario) -> str:
    return json.dumps({f"{k[0]} {k[1]}": describe(v) for k, v in expected_invoices(s).items()}, indent=1)
