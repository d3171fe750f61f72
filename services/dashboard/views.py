"""What the pages show, computed from the services' answers: pure functions, no I/O (unit-tested)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

SERVICE_TYPES = ("Fixed", "Time", "Usage")
INVOICE_STATUSES = ("held", "finalized", "sent", "viewed", "partially_paid", "paid", "overdue", "disputed", "void")
REPORT_GROUPS = ("plan_type", "service_category", "service", "client", "period")


class FormProblem(ValueError):
    """A form value the dashboard itself can tell is wrong before calling a service; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name, "") or "").strip()


def _optional(form: Mapping[str, Any], name: str) -> str | None:
    return _text(form, name) or None


def service_body(form: Mapping[str, Any], *, service_id: str, existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalog PUT body for a service from the form; fields the form does not edit keep their value."""
    body: dict[str, Any] = {k: v for k, v in (existing or {}).items() if k not in ("tenant_id", "entity_type")}
    body.update(
        service_id=service_id,
        code=_text(form, "code"),
        name=_text(form, "name"),
        service_type=_text(form, "service_type"),
        default_rate=_text(form, "default_rate"),
        currency=_text(form, "currency").upper(),
        unit=_text(form, "unit"),
        category_id=_optional(form, "category_id"),
        tax_category=_optional(form, "tax_category"),
    )
    if body["service_type"] not in SERVICE_TYPES:
        raise FormProblem("service_type", f"choose one of {', '.join(SERVICE_TYPES)}")
    if body["service_type"] != "Usage":
        body["snapshot_aggregation"] = None
    return body


def category_body(form: Mapping[str, Any], *, category_id: str) -> dict[str, Any]:
    return {
        "category_id": category_id,
        "name": _text(form, "name"),
        "description": _optional(form, "description"),
    }


def assignment_body(form: Mapping[str, Any], *, assignment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "assignment_id": assignment_id,
        "company_id": _text(form, "company_id"),
        "plan_id": _text(form, "plan_id"),
        "start_date": _text(form, "start_date"),
        "end_date": _optional(form, "end_date"),
    }
    for name in ("company_id", "plan_id", "start_date"):
        if not body[name]:
            raise FormProblem(name, "is required")
    return body


# -- bucket usage chart ----------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _plain(value: Decimal) -> str:
    """A quantity as people write it: 10, 7.5 (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text


@dataclass(frozen=True, slots=True)
class BucketBar:
    period_start: str
    period_end: str
    label: str  # "Jan 2026"
    allocated: str  # the period's hours: allocation + hours rolled in
    used: str  # hours used within the bucket
    overage: str  # hours beyond it (billed at the overage rate)
    remaining: str
    rolled_in: str
    rolled_out: str
    # geometry (SVG user units)
    x: int
    allocated_y: float
    allocated_h: float
    used_y: float
    used_h: float
    overage_y: float
    overage_h: float

    @property
    def summary(self) -> str:
        text = f"{self.label}: used {self.used} of {self.allocated} hours allocated"
        if _dec(self.overage) > 0:
            text += f", {self.overage} hours overage"
        return text


@dataclass(frozen=True, slots=True)
class BucketChart:
    assignment_id: str
    bars: list[BucketBar]
    width: int
    height: int
    top: str  # the scale's maximum, hours
    baseline: int


CHART_HEIGHT = 180
BAR_W = 28
GROUP_W = 90
MARGIN_TOP = 10


def _month_label(day: str) -> str:
    try:
        return date.fromisoformat(day).strftime("%b %Y")
    except ValueError:
        return day


def bucket_charts(rows: Sequence[Mapping[str, Any]]) -> list[BucketChart]:
    """One chart per bucket assignment: per period, the hours allocated (allocation + rolled in) beside the
    hours used, with overage stacked on top of used. Heights scale to the largest value over all periods."""
    by_assignment: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_assignment.setdefault(str(row["assignment_id"]), []).append(row)
    charts = []
    for assignment_id, periods in by_assignment.items():
        periods = sorted(periods, key=lambda r: str(r["period_start"]))
        values = []
        for r in periods:
            allocated = _dec(r.get("allocation")) + _dec(r.get("rolled_in"))
            values.append((allocated, _dec(r.get("used")), _dec(r.get("overage"))))
        top = max([max(a, u + o) for a, u, o in values] + [Decimal(1)])
        scale = Decimal(CHART_HEIGHT) / top
        baseline = MARGIN_TOP + CHART_HEIGHT
        bars = []
        for i, (r, (allocated, used, overage)) in enumerate(zip(periods, values, strict=True)):
            a_h, u_h, o_h = (float(v * scale) for v in (allocated, used, overage))
            x = 40 + i * GROUP_W
            bars.append(
                BucketBar(
                    period_start=str(r["period_start"]),
                    period_end=str(r["period_end"]),
                    label=_month_label(str(r["period_start"])),
                    allocated=_plain(allocated),
                    used=_plain(used),
                    overage=_plain(overage),
                    remaining=_plain(_dec(r.get("remaining"))),
                    rolled_in=_plain(_dec(r.get("rolled_in"))),
                    rolled_out=_plain(_dec(r.get("rolled_out"))),
                    x=x,
                    allocated_y=baseline - a_h,
                    allocated_h=a_h,
                    used_y=baseline - u_h,
                    used_h=u_h,
                    overage_y=baseline - u_h - o_h,
                    overage_h=o_h,
                )
            )
        charts.append(
            BucketChart(
                assignment_id=assignment_id,
                bars=bars,
                width=max(300, 60 + len(bars) * GROUP_W),
                height=baseline + 30,
                top=_plain(top),
                baseline=baseline,
            )
        )
    return charts


# -- reports -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportWindow:
    start: str  # from, inclusive (ISO date)
    end: str  # to, exclusive
    as_of: str  # the aging date


def _date_or(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def report_window(start: str | None, end: str | None, as_of: str | None, *, today: date) -> ReportWindow:
    """The reports' dates; by default this calendar year so far, up to the start of next month [from, to),
    and aging as of today. A date that does not parse falls back to its default."""
    first = date(today.year, 1, 1)
    next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return ReportWindow(
        _date_or(start, first).isoformat(), _date_or(end, next_month).isoformat(), _date_or(as_of, today).isoformat()
    )


def merged_audit(trails: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries of several services in one list, oldest first, each tagged with its service."""
    entries = [
        {"service": t["service"], **e}
        for t in trails
        if isinstance(t.get("data"), Mapping)
        for e in t["data"].get("entries", [])
    ]
    return sorted(entries, key=lambda e: (str(e.get("at", "")), e["service"], int(e.get("seq") or 0)))


AGING_LABELS = {"1_30": "1 to 30 days", "31_60": "31 to 60 days", "61_90": "61 to 90 days", "over_90": "over 90 days"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def column_label(name: str) -> str:
    """A report column's heading: its name in words (aging buckets as day ranges)."""
    return AGING_LABELS.get(name, name.replace("_", " "))


def is_number(value: Any) -> bool:
    """Whether a report cell is a number (right-aligned); amounts come as decimal strings."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int | Decimal) or bool(isinstance(value, str) and _NUMBER.match(value))


def names_by_id(items: Sequence[Mapping[str, Any]], id_field: str, name_field: str = "name") -> dict[str, str]:
    return {str(i[id_field]): str(i.get(name_field, i[id_field])) for i in items}
