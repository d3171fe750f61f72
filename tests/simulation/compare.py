"""Actual `invoice.finalized` invoices against the reference model's, line by line and to the cent.

Lines are matched by (kind, service_ref) and their amounts (amount, discount, net, tax); descriptions and line
order are ignored. An invoice is exact when every line pairs off, the sums and the currency agree, and it was
expected; an invoice expected but missing, or present but not expected, is a mismatch too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from tests.simulation.reference import Invoice
from tests.simulation.scenario import Scenario

MONEY = ("amount", "discount_amount", "net_amount", "tax_amount")


@dataclass
class Outcome:
    exact: int
    compared: int  # invoices expected or present
    reports: list[str]
    kinds: Counter[str]  # what differed, roughly, over the mismatched invoices (to triage a long run)


def _what_differs(exp: Invoice, act: dict[str, Any]) -> set[str]:
    """A rough name for each (kind, service) whose lines differ: discounts only, a minor unit, a quantity, a line
    missing or not expected, or another amount."""
    unit = Decimal(1).scaleb(-max(len(str(x).partition(".")[2]) for x in (exp.subtotal, act["subtotal"])))
    groups: dict[tuple[str, str, bool], tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = {}
    for ln in exp.lines:
        values = (Decimal(ln.quantity), *(getattr(ln, f) for f in MONEY))
        groups.setdefault((ln.kind, ln.service_ref, ln.unit == "adjustment"), ([], []))[0].append(values)
    for line in act["lines"]:
        values = (Decimal(line["quantity"]), *(Decimal(line[f]) for f in MONEY))
        key = (line["kind"], line.get("service_ref") or "", line.get("unit") == "adjustment")
        groups.setdefault(key, ([], []))[1].append(values)
    out = set()
    for (kind, _, adjusted), (want, have) in groups.items():
        if sorted(w[1:] for w in want) == sorted(h[1:] for h in have):
            continue
        label = f"{kind}{' adjustment' if adjusted else ''}"
        if not have:
            out.add(f"{label}: line missing")
        elif not want:
            out.add(f"{label}: line not expected")
        elif sum(w[1] for w in want) == sum(h[1] for h in have):
            out.add(f"{label}: same amounts, discounts or grouping differ")
        elif abs(sum(w[1] for w in want) - sum(h[1] for h in have)) <= unit * len(want):
            out.add(f"{label}: a minor unit off")
        elif kind == "usage" and not adjusted and sorted(w[0] for w in want) != sorted(h[0] for h in have):
            out.add(f"{label}: quantity differs")
        else:
            out.add(f"{label}: amount differs")
    return out


def _key(kind: str, ref: str | None, values: tuple[Decimal, ...]) -> tuple[Any, ...]:
    return (kind, ref or "", *values)


def _actual_line_key(line: dict[str, Any]) -> tuple[Any, ...]:
    return _key(line["kind"], line.get("service_ref"), tuple(Decimal(line[f]) for f in MONEY))


def _row(kind: str, ref: str, qty: Any, values: tuple[Decimal, ...], note: str, mark: str) -> str:
    amounts = "  ".join(f"{v!s:>10}" for v in values)
    return f"    {mark} {kind:<15} {ref:<24} q={qty!s:<10} {amounts}  {note}"


def compare(s: Scenario, expected: dict[tuple[str, date], Invoice], actual: list[dict[str, Any]]) -> Outcome:
    found: dict[tuple[str, date], list[dict[str, Any]]] = {}
    for inv in actual:
        found.setdefault((inv["company_ref"], date.fromisoformat(inv["period_start"])), []).append(inv)
    reports: list[str] = []
    kinds: Counter[str] = Counter()
    exact = 0
    keys = sorted(set(expected) | set(found))
    for key in keys:
        ref, period = key
        head = f"seed {s.seed}, client {ref} ({s.clients.get(ref, '?')}), period {period}"
        exp = expected.get(key)
        acts = found.get(key, [])
        if exp is None:
            lines = "\n".join(
                _row(
                    ln["kind"],
                    ln.get("service_ref") or "",
                    ln["quantity"],
                    tuple(Decimal(ln[f]) for f in MONEY),
                    ln["description"],
                    "+",
                )
                for a in acts
                for ln in a["lines"]
            )
            reports.append(f"{head}: an invoice was issued but none was expected\n{lines}")
            kinds["invoice not expected"] += 1
            continue
        if not acts:
            lines = "\n".join(
                _row(ln.kind, ln.service_ref, ln.quantity, tuple(getattr(ln, f) for f in MONEY), ln.note, "-")
                for ln in exp.lines
            )
            reports.append(f"{head}: expected an invoice of {exp.total} {exp.currency}, none was issued\n{lines}")
            kinds["invoice missing"] += 1
            continue
        if len(acts) > 1:
            reports.append(f"{head}: {len(acts)} invoices were issued for one period")
        act = acts[0]
        problems = []
        if act["currency"] != exp.currency:
            problems.append(f"currency {act['currency']} != expected {exp.currency}")
        for name in ("subtotal", "discount_total", "tax_total", "total"):
            if Decimal(act[name]) != getattr(exp, name):
                problems.append(f"{name} {act[name]} != expected {getattr(exp, name)}")
        want = Counter(_key(ln.kind, ln.service_ref, tuple(getattr(ln, f) for f in MONEY)) for ln in exp.lines)
        have = Counter(_actual_line_key(ln) for ln in act["lines"])
        missing, extra = want - have, have - want
        if missing or extra:
            problems.append(f"{sum(missing.values())} expected line(s) not found, {sum(extra.values())} unexpected")
        if not problems and len(acts) == 1:
            exact += 1
            continue
        kinds.update(_what_differs(exp, act) or {"sums or currency differ"})
        rows = ["    (- expected only, + actual only, = both)      amount    discount         net         tax"]
        seen: Counter[tuple[Any, ...]] = Counter()
        for ln in sorted(exp.lines, key=lambda x: (x.kind, x.service_ref)):
            k = _key(ln.kind, ln.service_ref, tuple(getattr(ln, f) for f in MONEY))
            seen[k] += 1
            mark = "=" if seen[k] <= have[k] else "-"
            rows.append(_row(ln.kind, ln.service_ref, ln.quantity, k[2:], f"[{ln.note}]", mark))
        seen.clear()
        for line in sorted(act["lines"], key=lambda x: (x["kind"], x.get("service_ref") or "")):
            k = _actual_line_key(line)
            seen[k] += 1
            if seen[k] > want[k]:
                rows.append(
                    _row(line["kind"], line.get("service_ref") or "", line["quantity"], k[2:], line["description"], "+")
                )
        sums = (
            f"    expected {exp.subtotal} - {exp.discount_total} + {exp.tax_total} = {exp.total} {exp.currency}; "
            f"actual {act['subtotal']} - {act['discount_total']} + {act['tax_total']} = {act['total']} "
            f"{act['currency']}"
        )
        reports.append(f"{head}: " + "; ".join(problems) + "\n" + "\n".join(rows) + "\n" + sums)
    return Outcome(exact, len(keys), reports, kinds)
