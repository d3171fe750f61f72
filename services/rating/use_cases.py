"""Rating use cases, each inside the kernel's batch transaction."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.rating.adapters.repository import LedgerRow, RatingRepository
from services.rating.domain import thresholds
from services.rating.domain.buckets import Lot, Settlement, allocation_for, available, carried_through, settle
from services.rating.domain.close_pricing import (
    CarriedIn,
    Priced,
    UsageRecord,
    adjustment,
    bucket_overage,
    covered_span,
    fixed_fee,
    fixed_target,
    price_usage_line,
    span_start,
    usage_rule_key,
)
from services.rating.domain.cycles import periods_to_close
from services.rating.domain.line_pricing import line_terms
from services.rating.domain.pricing import (
    Deferred,
    PlanCandidate,
    Recorded,
    Routed,
    Unrated,
    move_to_period,
    price_time,
    price_usage,
    route_like,
)
from shared import audit, principals, topics
from shared.client_status import status_on
from shared.contracts.catalog import (
    AssignmentState,
    BillingTiming,
    BundleState,
    CatalogEvent,
    ClientStatus,
    ClientStatusState,
    CompanyState,
    PlanState,
    ServiceState,
    ServiceType,
    StatusChange,
    UserState,
)
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.contracts.rating import ChargeCreated, PeriodCompleted, ThresholdCrossed
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections, Retry
from shared.messaging.envelope import Parsed
from shared.periods import BillingFrequency, Period, local_date, next_period, period_bounds_utc, period_containing

AcceptedRecord = AcceptedUsage | AcceptedTime
SYSTEM = "system:rating"


def parse_record(doc: dict[str, Any]) -> AcceptedRecord:
    if doc.get("record_type") == "time":
        return AcceptedTime.model_validate(doc)
    return AcceptedUsage.model_validate(doc)


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    """Keep rating's catalog view, then re-rate records that were waiting for what just arrived."""
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
    repo = RatingRepository(uow.conn)
    await repo.lock_tenant(uow.require_tenant(), exclusive=True)
    for item in items:
        await repo.save_catalog(item.body)
    parked = await repo.take_unrated()
    if parked:
        await _rate(uow, repo, [parse_record(doc) for doc in parked])
    return []


async def rate_records(uow: UnitOfWork, items: Sequence[Parsed[AcceptedRecord]]) -> Rejections[AcceptedRecord]:
    """Price accepted usage and time: charge at once, defer to the period's close, or record uncharged.

    A record rating cannot price yet (its client, service or plan not in rating's catalog view, which
    arrives on another topic) is parked with the reason, never dropped, and re-rated when the catalog
    changes. Each record is kept once in the ledger, so a redelivery changes nothing.
    """
    repo = RatingRepository(uow.conn)
    await repo.lock_tenant(uow.require_tenant(), exclusive=False)
    await _rate(uow, repo, [i.body for i in items])
    return []


rate_usage = rate_records  # the walking skeleton's name


@dataclass
class _View:
    """The slice of rating's catalog view one batch needs."""

    tz: str
    livemode: bool
    companies: dict[UUID, CompanyState]
    services: dict[UUID, ServiceState]
    assignments: list[AssignmentState]
    plans: dict[UUID, PlanState]
    bundles: dict[UUID, BundleState]
    statuses: dict[UUID, ClientStatusState]

    def candidates(self, company_id: UUID) -> list[PlanCandidate]:
        return [
            PlanCandidate(a, self.plans[a.plan_id])
            for a in self.assignments
            if a.company_id == company_id and a.plan_id in self.plans
        ]

    def history(self, company_id: UUID) -> list[StatusChange]:
        status = self.statuses.get(company_id)
        return list(status.history) if status else []


async def _view(
    repo: RatingRepository, tz: str, livemode: bool, company_ids: list[UUID], service_ids: list[UUID]
) -> _View:
    return (await _tenant_and_view(repo, None, company_ids, service_ids, tz=tz, livemode=livemode))[1]


async def _tenant_and_view(
    repo: RatingRepository,
    tenant_id: UUID | None,
    company_ids: list[UUID],
    service_ids: list[UUID],
    *,
    tz: str = "UTC",
    livemode: bool = False,
) -> tuple[tuple[str, bool] | None, _View]:
    """The tenant's (time zone, livemode), None when unknown (or not asked for), and the view's slice, in one
    round trip."""
    tenant, found = await repo.catalog_slice(tenant_id, company_ids, service_ids)
    tz, livemode = tenant or (tz, livemode)
    view = _View(
        tz,
        livemode,
        found["company"],
        found["service"],
        list(found["assignment"].values()),
        found["plan"],
        found["bundle"],
        found["client_status"],
    )
    return tenant, view


async def _rate(uow: UnitOfWork, repo: RatingRepository, records: list[AcceptedRecord]) -> None:
    tenant_id = uow.require_tenant()
    # Every count joins the client's count history, whatever becomes of the record (no plan in force, a
    # suspended day, parked): it is the count in force until the next one (docs/billing-rules.md §3).
    counts = [r for r in records if isinstance(r, AcceptedUsage) and r.kind == "snapshot"]
    new_counts = await repo.save_snapshots(
        tenant_id, [(r.record_id, r.company_id, r.service_id, r.occurred_at, r.quantity) for r in counts]
    )
    tenant, view = await _tenant_and_view(
        repo, tenant_id, list({r.company_id for r in records}), list({r.service_id for r in records})
    )
    if tenant is None:
        reason = f"tenant {tenant_id} is not in rating's catalog view yet"
        await repo.save_unrated(tenant_id, [(r.record_id, reason, r.model_dump(mode="json")) for r in records])
        return
    tz = view.tz
    times = [r for r in records if isinstance(r, AcceptedTime)]
    users: dict[UUID, UserState] = {}
    by_ref: dict[str, UserState] = {}
    if times:
        for u in await repo.users([r.user_id for r in times if r.user_id], [r.user_ref for r in times]):
            users[u.user_id] = u
            if u.user_ref:
                by_ref[u.user_ref] = u

    routed: list[tuple[AcceptedRecord, Routed]] = []
    unrated: list[tuple[UUID, str, dict[str, object]]] = []
    # Per batch, not per record: each client's plans and status history, each instant's local day, and the
    # routing of usage per (client, service, day, kind), which is the same for every such record.
    per_company: dict[UUID, tuple[list[PlanCandidate], list[StatusChange]]] = {}
    days: dict[datetime, date] = {}
    usage_routes: dict[tuple[UUID, UUID, date, str], Routed] = {}
    for record in records:
        company = view.companies.get(record.company_id)
        if company is None:
            reason = f"client {record.company_ref!r} is not in rating's catalog view yet"
            unrated.append((record.record_id, reason, record.model_dump(mode="json")))
            continue
        day = days.get(record.occurred_at)
        if day is None:
            day = days[record.occurred_at] = local_date(record.occurred_at, tz=tz)
        if company.company_id not in per_company:
            per_company[company.company_id] = (view.candidates(company.company_id), view.history(company.company_id))
        candidates, history = per_company[company.company_id]
        result: Routed
        if isinstance(record, AcceptedTime):
            user = users.get(record.user_id) if record.user_id else None
            result = price_time(
                record,
                day=day,
                company=company,
                service=view.services.get(record.service_id),
                candidates=candidates,
                bundles=view.bundles,
                history=history,
                user=user or by_ref.get(record.user_ref),
            )
        else:
            route = (company.company_id, record.service_id, day, record.kind)
            first = usage_routes.get(route)
            if first is None:
                result = usage_routes[route] = price_usage(
                    record,
                    day=day,
                    company=company,
                    service=view.services.get(record.service_id),
                    candidates=candidates,
                    bundles=view.bundles,
                    history=history,
                )
            else:
                result = route_like(first, record)
        if isinstance(result, Unrated):
            unrated.append((record.record_id, result.reason, record.model_dump(mode="json")))
        else:
            routed.append((record, result))
    if unrated:
        await repo.save_unrated(tenant_id, unrated)
    fresh = await repo.record([_ledger_row(tenant_id, r, result) for r, result in routed]) if routed else set()
    routed = [(r, result) for r, result in routed if r.record_id in fresh]  # a redelivery changes nothing
    priced = [result for _, result in routed if isinstance(result, tuple)]
    deferred = [(r, result) for r, result in routed if isinstance(result, Deferred)]
    if priced:
        await _book(uow, repo, tenant_id, tz, priced, view.companies)
    repriced: set[tuple[UUID, int, date]] = set()
    adjustments = await _late_deferred(repo, view, deferred, repriced) if deferred else []
    late_counts = [r for r in counts if r.record_id in new_counts and r.company_id in view.companies]
    if late_counts:
        adjustments.extend(await _carried_forward(repo, view, late_counts, repriced))
    if adjustments:
        counted = await repo.count_into_open_periods(tenant_id, _counts([(c, f) for c, f, _ in adjustments]))
        if len(counted) < len({(c.company_id, f.value, c.period_start) for c, f, _ in adjustments}):
            raise Retry("the open period closed while adjustments were booked into it")
        await _send(uow, repo, [c for c, _, _ in adjustments], {c.charge_id: k for c, _, k in adjustments})
    if deferred:
        await _thresholds(uow, repo, view, deferred)


def _ledger_row(tenant_id: UUID, record: AcceptedRecord, result: Routed) -> LedgerRow:
    if isinstance(result, tuple):
        charge, _ = result
        disposition, note, assignment, period_start, quantity = (
            "charged",
            None,
            charge.assignment_id,
            charge.period_start,
            charge.quantity,
        )
    elif isinstance(result, Deferred):
        disposition, note = result.disposition, None
        assignment, period_start, quantity = (
            result.candidate.assignment.assignment_id,
            result.period.start,
            result.quantity,
        )
    else:
        assert isinstance(result, Recorded)
        disposition, note = result.disposition, result.note
        assignment = result.candidate.assignment.assignment_id if result.candidate else None
        period_start = result.period.start
        quantity = record.hours if isinstance(record, AcceptedTime) else record.quantity
    return (
        tenant_id,
        record.record_id,
        record.record_type,
        record.company_id,
        record.service_id,
        assignment,
        period_start,
        record.occurred_at,
        quantity,
        disposition,
        note,
        record.model_dump_json(),
    )


async def _book(
    uow: UnitOfWork,
    repo: RatingRepository,
    tenant_id: UUID,
    tz: str,
    priced: list[tuple[ChargeCreated, BillingFrequency]],
    companies: dict[UUID, CompanyState],
) -> None:
    existing = await repo.existing_charges([c.charge_id for c, _ in priced])
    fresh = [(c, f) for c, f in priced if c.charge_id not in existing]
    accepted = await repo.count_into_open_periods(tenant_id, _counts(fresh))
    late = [(c, f) for c, f in fresh if (c.company_id, f.value, c.period_start) not in accepted]
    if late:
        today = await _today(repo, tenant_id, tz)
        moved = [
            (
                move_to_period(c, period_containing(today, frequency=f, anchor=companies[c.company_id].billing_anchor)),
                f,
            )
            for c, f in late
        ]
        taken = await repo.count_into_open_periods(tenant_id, _counts(moved))
        if len(taken) < len({(c.company_id, f.value, c.period_start) for c, f in moved}):
            raise Retry("the open period closed while late charges were moved into it")
        fresh = [(c, f) for c, f in fresh if (c.company_id, f.value, c.period_start) in accepted] + moved
    await _send(uow, repo, [c for c, _ in fresh], {})


async def _send(uow: UnitOfWork, repo: RatingRepository, charges: list[ChargeCreated], keys: dict[UUID, str]) -> None:
    """Keep and publish charges already counted into their periods."""
    if not charges:
        return
    documents = [c.model_dump_json() for c in charges]  # serialized once: kept and published as the same bytes
    await uow.flush()  # what was published before these charges stays before them in the outbox
    await repo.insert_and_publish_charges(
        charges,
        keys,
        documents,
        topic=topics.RATING_CHARGES.name,
        message_keys=[f"{c.tenant_id}:{c.company_ref}" for c in charges],
    )
    await audit.record(
        uow,
        actor=SYSTEM,
        action="charges_created",
        entity_type="charge_batch",
        entity_id=charges[0].charge_id,
        at=datetime.now(UTC),
        after={"charge_ids": [str(c.charge_id) for c in charges], "total": str(sum(c.amount for c in charges))},
    )


async def _today(repo: RatingRepository, tenant_id: UUID, tz: str) -> date:
    now = await repo.clock(tenant_id)
    if now is None:
        raise Retry("a period is closed but the tenant's clock is unknown")
    return local_date(now, tz=tz)


def _counts(
    priced: list[tuple[ChargeCreated, BillingFrequency]],
) -> list[tuple[UUID, str, date, date, int]]:
    counts: dict[tuple[UUID, str, date, date], int] = defaultdict(int)
    for c, f in priced:
        counts[(c.company_id, f.value, c.period_start, c.period_end)] += 1
    return [(*k, n) for k, n in counts.items()]


# -- late records of period-priced lines -------------------------------------------------------------------


Adjustment = tuple[ChargeCreated, BillingFrequency, str]
"""A correction charge, the frequency of the period it is booked into, and the rule key it corrects"""


async def _late_deferred(
    repo: RatingRepository,
    view: _View,
    deferred: list[tuple[AcceptedRecord, Deferred]],
    repriced: set[tuple[UUID, int, date]],
) -> list[Adjustment]:
    """A record for a period already closed (or a bucket period already settled): price the period again
    with it; the difference is charged in the open period, referencing the charges it corrects. Adds each
    (assignment, line, period) it priced again to ``repriced``."""
    at_close = {
        (d.candidate.assignment.assignment_id, d.line_index, d.period.start): d
        for _, d in deferred
        if d.disposition == "at_close"
    }
    keys = [
        (d.candidate.assignment.company_id, d.candidate.plan.billing_frequency.value, d.period.start)
        for d in at_close.values()
    ]
    closed = await repo.closed_periods(keys) if keys else set()
    adjustments: list[Adjustment] = []
    today: date | None = None
    reprice = [
        d
        for d in at_close.values()
        if (d.candidate.assignment.company_id, d.candidate.plan.billing_frequency.value, d.period.start) in closed
    ]
    carried = await _carried_in(
        repo,
        view,
        [
            (
                view.companies[d.candidate.assignment.company_id],
                BillingFrequency(d.candidate.plan.billing_frequency),
                d.period,
            )
            for d in reprice
        ],
    )
    for d in reprice:
        company = view.companies[d.candidate.assignment.company_id]
        frequency = BillingFrequency(d.candidate.plan.billing_frequency)
        today = today or await _today(repo, company.tenant_id, view.tz)
        open_period = period_containing(today, frequency=frequency, anchor=company.billing_anchor)
        repriced.add((d.candidate.assignment.assignment_id, d.line_index, d.period.start))
        key = usage_rule_key(d.candidate, d.line_index, d.period)
        priced = await _price_line_at_close(repo, view, company, d.candidate, d.line_index, d.period, carried)
        reason = f"late usage for {d.period.start.isoformat()} to {d.period.end.isoformat()}"
        adj = await _repriced(repo, priced or Priced(key, []), billed_in=open_period, reason=reason)
        if adj is not None:
            adjustments.append((adj, frequency, key))
    # a late entry of a settled bucket period: that period and every later settled one, from the earliest
    earliest: dict[UUID, Deferred] = {}
    for _, d in deferred:
        if d.disposition == "bucket":
            a = d.candidate.assignment.assignment_id
            if a not in earliest or d.period.start < earliest[a].period.start:
                earliest[a] = d
    for a in sorted(earliest, key=str):
        await repo.lock_bucket(a)
        adjustments.extend(await _resettle_bucket(repo, view, earliest[a]))
    return adjustments


async def _carried_forward(
    repo: RatingRepository,
    view: _View,
    counts: list[AcceptedUsage],
    repriced: set[tuple[UUID, int, date]],
) -> list[Adjustment]:
    """New snapshot counts change the count carried into every later closed period until the next count, of
    every assignment of the client with a line for that service (also one that started after the count, or
    that the count had no plan for): price each such period again with the count now carried in and charge the
    difference in the open period, referencing the charges it corrects (none when the period had none). A
    period its own late record already priced again (``repriced``) is left out."""
    now = await repo.clock(counts[0].tenant_id)
    if now is None:
        return []  # no tick yet: nothing is closed
    today = local_date(now, tz=view.tz)
    by_series: dict[tuple[UUID, UUID], tuple[datetime, datetime]] = {}
    for r in counts:  # per client and service: the earliest and the latest new count
        first, last = by_series.get((r.company_id, r.service_id), (r.occurred_at, r.occurred_at))
        by_series[(r.company_id, r.service_id)] = (min(first, r.occurred_at), max(last, r.occurred_at))
    nexts = await repo.snapshots_after([(c, s, last) for (c, s), (_, last) in by_series.items()])
    later: list[tuple[PlanCandidate, int, Period, datetime]] = []
    for (company_id, service_id), (first, last) in by_series.items():
        company = view.companies[company_id]
        until = nexts.get((company_id, service_id, last))  # the next count after them: carried no further
        for candidate in view.candidates(company_id):
            index = next((i for i, line in enumerate(candidate.plan.lines) if line.service_id == service_id), None)
            if index is None:
                continue
            a, frequency = candidate.assignment, BillingFrequency(candidate.plan.billing_frequency)
            p = period_containing(max(local_date(first, tz=view.tz), a.start_date), frequency=frequency,
                                  anchor=company.billing_anchor)  # fmt: skip
            while p.end <= today and (a.end_date is None or p.start < a.end_date):
                starts = period_bounds_utc(Period(span_start(candidate, p), p.end), tz=view.tz)[0]
                if until is not None and starts > until:
                    break
                if starts > first and (a.assignment_id, index, p.start) not in repriced:
                    later.append((candidate, index, p, first))
                p = next_period(p, frequency=frequency, anchor=company.billing_anchor)
    if not later:
        return []
    closed = await repo.closed_periods(
        [(c.assignment.company_id, c.plan.billing_frequency.value, p.start) for c, _, p, _ in later]
    )
    later = [x for x in later if (x[0].assignment.company_id, x[0].plan.billing_frequency.value, x[2].start) in closed]
    targets = [
        (view.companies[c.assignment.company_id], BillingFrequency(c.plan.billing_frequency), p) for c, _, p, _ in later
    ]
    carried = await _carried_in(repo, view, targets)  # one query for every later period
    out: list[Adjustment] = []
    for candidate, index, p, first in later:
        company = view.companies[candidate.assignment.company_id]
        frequency = BillingFrequency(candidate.plan.billing_frequency)
        key = usage_rule_key(candidate, index, p)
        priced = await _price_line_at_close(repo, view, company, candidate, index, p, carried)
        adj = await _repriced(
            repo,
            priced or Priced(key, []),
            billed_in=period_containing(today, frequency=frequency, anchor=company.billing_anchor),
            reason=f"count carried in changed by a late snapshot of {first.isoformat()}",
        )
        if adj is not None:
            out.append((adj, frequency, key))
    return out


async def _repriced(repo: RatingRepository, priced: Priced, *, billed_in: Period, reason: str) -> ChargeCreated | None:
    """The adjustment bringing what was sent for a rule to what it comes to now (None when nothing differs). A
    rule that now charges nothing (a count of 0, a quantity within what is included) credits everything sent,
    described like the charges it corrects."""
    sent = (await repo.sent_for_rules([priced.rule_key])).get(priced.rule_key)
    if sent is None and not priced.charges:
        return None
    total, ids = sent or (Decimal(0), [])
    template = None
    if sent is not None and not priced.charges:
        template = ChargeCreated.model_validate((await repo.charges_of_rule(priced.rule_key))[0])
    return adjustment(
        priced=priced, sent_total=total, sent_ids=ids, billed_in=billed_in, reason=reason, template=template
    )


async def _resettle_bucket(
    repo: RatingRepository, view: _View, d: Deferred
) -> list[tuple[ChargeCreated, BillingFrequency, str]]:
    """A late entry for a settled bucket period: settle that period again, then every later settled period of
    the bucket in order with the hours the new settlement carries into it (rollover in, usage in time order,
    overage), and charge each period's overage difference in the open period, referencing the charges it
    corrects. A changed settlement is kept as a new revision of the period's bucket usage record; the charges
    already sent are never rewritten. Idempotent: settled again with nothing new, nothing differs."""
    candidate = d.candidate
    company = view.companies[candidate.assignment.company_id]
    bucket = candidate.plan.bucket
    assert bucket is not None
    assignment_id = candidate.assignment.assignment_id
    rows = await repo.bucket_rows_from(assignment_id, d.period.start)
    if not rows or rows[0]["period_start"] != d.period.start:
        return []  # the entry's bucket period is not settled yet: its close will count it
    frequency = BillingFrequency(candidate.plan.billing_frequency)
    today = await _today(repo, company.tenant_id, view.tz)
    open_period = period_containing(today, frequency=frequency, anchor=company.billing_anchor)
    carried = await repo.carried_into(assignment_id, d.period.start)
    late = f"late time for bucket period {d.period.start.isoformat()} to {d.period.end.isoformat()}"
    out: list[tuple[ChargeCreated, BillingFrequency, str]] = []
    for row in rows:
        period = Period(row["period_start"], row["period_end"])
        records = await repo.deferred(assignment_id, period.start, "bucket")
        entries = [(r["record_id"], r["quantity"]) for r in records]
        settlement = settle(bucket, carried, entries, allocation=allocation_for(bucket, period, candidate.assignment))
        if _settlement_changed(row, settlement):
            await repo.save_bucket(
                company.tenant_id,
                company.company_id,
                assignment_id,
                period.start,
                period.end,
                settlement,
                revision=row["revision"] + 1,
            )
        priced = bucket_overage(
            company=company,
            candidate=candidate,
            definition=bucket,
            settlement=settlement,
            bucket_period=period,
            billed_in=open_period,
            service_of={r["record_id"]: view.services[r["service_id"]] for r in records},
            line_of=_lines_by_service(candidate.plan),
        )
        sent = (await repo.sent_for_rules([priced.rule_key])).get(priced.rule_key, (Decimal(0), []))
        reason = late if period.start == d.period.start else f"rollover changed by {late}"
        adj = adjustment(priced=priced, sent_total=sent[0], sent_ids=sent[1], billed_in=open_period, reason=reason)
        if adj is not None:
            out.append((adj, frequency, priced.rule_key))
        carried = list(settlement.rolled_out)
    return out


def _settlement_changed(row: dict[str, Any], s: Settlement) -> bool:
    kept = (row["rolled_in"], row["used"], row["overage"], row["remaining"], row["rolled_out"], row["expired"])
    now = (s.rolled_in, s.used, s.overage, s.remaining, s.rolled_out_hours, s.expired)
    lots = [(Decimal(x["hours"]), x["periods_left"]) for x in row["carried"] or []]
    return kept != now or lots != [(lot.hours, lot.periods_left) for lot in s.rolled_out]


def _lines_by_service(plan: PlanState) -> dict[UUID, int]:
    return {line.service_id: i for i, line in enumerate(plan.lines) if line.service_id is not None}


CarriedKey = tuple[UUID, UUID, datetime]
"""client, service, and the instant the covered span starts"""


def _close_candidates(
    view: _View, company: CompanyState, frequency: BillingFrequency, period: Period
) -> list[PlanCandidate]:
    """The client's assignments of plans of ``frequency`` in force during some of ``period``."""
    return [
        c
        for c in view.candidates(company.company_id)
        if c.plan.billing_frequency == frequency
        and c.assignment.start_date < period.end
        and (c.assignment.end_date is None or c.assignment.end_date > period.start)
    ]


def _carried_key(view: _View, candidate: PlanCandidate, service_id: UUID, period: Period) -> CarriedKey:
    start = span_start(candidate, period)
    return candidate.assignment.company_id, service_id, period_bounds_utc(Period(start, period.end), tz=view.tz)[0]


async def _carried_in(
    repo: RatingRepository, view: _View, targets: Sequence[tuple[CompanyState, BillingFrequency, Period]]
) -> dict[CarriedKey, UsageRecord]:
    """The snapshot count in force when each covered span of ``targets`` starts (the latest snapshot before it,
    same client and service), for every usage line of the plans being priced: one query for all of them."""
    keys: set[CarriedKey] = set()
    for company, frequency, period in targets:
        for candidate in _close_candidates(view, company, frequency, period):
            for line in candidate.plan.lines:
                service = view.services.get(line.service_id) if line.service_id else None
                if service is not None and service.service_type is ServiceType.USAGE:
                    keys.add(_carried_key(view, candidate, service.service_id, period))
    if not keys:
        return {}
    found = await repo.snapshots_before(sorted(keys, key=lambda k: (str(k[0]), str(k[1]), k[2])))
    return {k: UsageRecord(r["record_id"], r["occurred_at"], "snapshot", r["quantity"]) for k, r in found.items()}


async def _price_line_at_close(
    repo: RatingRepository,
    view: _View,
    company: CompanyState,
    candidate: PlanCandidate,
    index: int,
    period: Period,
    carried: dict[CarriedKey, UsageRecord],
) -> Priced | None:
    """The line's charges for the period: its records of the period, and the snapshot count carried in (from
    ``carried``, `_carried_in`) when the line's service is active on the span's first day."""
    line = candidate.plan.lines[index]
    service = view.services.get(line.service_id) if line.service_id else None
    if service is None:
        return None
    rows = await repo.deferred(candidate.assignment.assignment_id, period.start, "at_close", service.service_id)
    key = _carried_key(view, candidate, service.service_id, period)
    before = carried.get(key)
    first_day = span_start(candidate, period)
    status = status_on(
        view.history(company.company_id),
        first_day,
        assignment_id=candidate.assignment.assignment_id,
        service_id=service.service_id,
    )
    carried_in = CarriedIn(before, key[2]) if before is not None and status is ClientStatus.ACTIVE else None
    if not rows and (carried_in is None or carried_in.record.quantity == 0):
        return None  # nothing counted, or a count of 0 in force: nothing to bill
    records = [
        UsageRecord(r["record_id"], r["occurred_at"], r["document"].get("kind", "delta"), r["quantity"]) for r in rows
    ]
    return price_usage_line(
        company=company,
        candidate=candidate,
        line_index=index,
        service=service,
        period=period,
        records=records,
        span_bounds=period_bounds_utc(covered_span(candidate, period), tz=view.tz),
        day_of=lambda instant: local_date(instant, tz=view.tz),
        carried_in=carried_in,
    )


async def _carried_so_far(repo: RatingRepository, view: _View, candidate: PlanCandidate, start: date) -> list[Lot]:
    """The hours carried into the bucket period starting on ``start``, as known now: from the last settled period
    before it, every period up to it settled again provisionally with the entries rated so far (the periods are
    settled for real when the billing period containing their end closes)."""
    bucket = candidate.plan.bucket
    assert bucket is not None
    frequency = BillingFrequency(bucket.period)
    anchor = view.companies[candidate.assignment.company_id].billing_anchor
    assignment_id = candidate.assignment.assignment_id
    last = await repo.settled_before(assignment_id, start)
    if last is None:
        bp, carried = period_containing(candidate.assignment.start_date, frequency=frequency, anchor=anchor), []
    else:
        bp, carried = period_containing(last[0], frequency=frequency, anchor=anchor), last[1]
    if bp.start >= start:
        return carried
    entries = await repo.bucket_entries(assignment_id, bp.start, start)
    periods: list[list[tuple[UUID, Decimal]]] = []
    allocations: list[Decimal] = []
    while bp.start < start:
        periods.append(entries.get(bp.start, []))
        allocations.append(allocation_for(bucket, bp, candidate.assignment))
        bp = next_period(bp, frequency=frequency, anchor=anchor)
    return carried_through(bucket, carried, periods, allocations=allocations)


# -- thresholds ------------------------------------------------------------------------------------------


async def _thresholds(
    uow: UnitOfWork, repo: RatingRepository, view: _View, deferred: list[tuple[AcceptedRecord, Deferred]]
) -> None:
    """Publish each level a bucket's hours or a usage line's included quantity crossed, once per period."""
    tenant_id = uow.require_tenant()
    added: dict[tuple[str, UUID, date, UUID | None], tuple[Decimal, Deferred]] = {}
    for record, d in deferred:
        line = d.candidate.plan.lines[d.line_index]
        k: tuple[str, UUID, date, UUID | None]
        if d.disposition == "bucket":
            k = ("bucket", d.candidate.assignment.assignment_id, d.period.start, None)
        elif line.included_quantity > 0 and isinstance(record, AcceptedUsage) and record.kind == "delta":
            k = ("usage", d.candidate.assignment.assignment_id, d.period.start, record.service_id)
        else:
            continue
        before = added.get(k, (Decimal(0), d))[0]
        added[k] = (before + d.quantity, d)
    for (subject, assignment_id, start, service_id), (batch, d) in added.items():
        if subject == "bucket":
            bucket = d.candidate.plan.bucket
            assert bucket is not None
            allocation = allocation_for(bucket, d.period, d.candidate.assignment)
            limit = available(bucket, await _carried_so_far(repo, view, d.candidate, start), allocation=allocation)
            key, unit = f"bucket:{assignment_id}", "hour"
            configured = bucket.threshold_levels
        else:
            limit = d.candidate.plan.lines[d.line_index].included_quantity
            configured = d.candidate.plan.lines[d.line_index].threshold_levels
            key, unit = f"usage:{assignment_id}:{service_id}", view.services[service_id].unit if service_id else "unit"
        total = await repo.deferred_total(assignment_id, start, d.disposition, service_id)
        levels = thresholds.crossed(thresholds.levels(configured), limit=limit, before=total - batch, after=total)
        if not levels:
            continue
        company = view.companies[d.candidate.assignment.company_id]
        for level in await repo.claim_crossings(tenant_id, key, start, levels):
            event = ThresholdCrossed(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"threshold:{tenant_id}:{key}:{start}:{level}"),
                tenant_id=tenant_id,
                company_id=company.company_id,
                company_ref=company.company_ref,
                subject="bucket" if subject == "bucket" else "usage",
                assignment_id=assignment_id,
                plan_id=d.candidate.plan.plan_id,
                service_id=service_id,
                period_start=d.period.start,
                period_end=d.period.end,
                level_percent=level,
                limit=limit,
                total=total,
                unit=unit,
                livemode=view.livemode,
            )
            uow.publish(topic=topics.RATING_THRESHOLDS.name, key=event.key(), message=event, message_id=event.event_id)


# -- closing periods -------------------------------------------------------------------------------------


async def close_periods(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """On a tick, close every billing period that has ended: price what is priced at close (period-priced
    usage, bucket overage, fixed fees and the next cycle's fees in advance), then announce the period."""
    tenant_id = uow.require_tenant()
    repo = RatingRepository(uow.conn)
    await repo.lock_tenant(tenant_id, exclusive=True)
    tenant = await repo.tenant(tenant_id)
    if tenant is None:
        raise Retry(f"tenant {tenant_id} not yet in rating's catalog view")
    tz, livemode = tenant
    latest = max(items, key=lambda i: i.body.now).body
    if not await repo.set_clock(tenant_id, latest.now):
        return []
    today = local_date(latest.now, tz=tz)
    assignments = await repo.all_assignments()
    view = await _view(repo, tz, livemode, list({a.company_id for a in assignments}), [])
    done: set[tuple[UUID, str]] = set()
    closing: list[tuple[CompanyState, BillingFrequency, Period]] = []
    for a in sorted(view.assignments, key=lambda a: (str(a.company_id), a.start_date)):
        company, plan = view.companies.get(a.company_id), view.plans.get(a.plan_id)
        if company is None or plan is None or (a.company_id, plan.billing_frequency) in done:
            continue
        done.add((a.company_id, plan.billing_frequency))
        frequency = BillingFrequency(plan.billing_frequency)
        starts = [x.start_date for x in view.assignments if x.company_id == a.company_id]
        last = await repo.last_closed_end(a.company_id, frequency.value)
        for period in periods_to_close(
            start=min(starts),
            last_closed_end=last,
            today=today,
            frequency=frequency,
            anchor=company.billing_anchor,
        ):
            closing.append((company, frequency, period))
    carried = await _carried_in(repo, view, closing)  # one query for every client and service of the close
    for company, frequency, period in closing:
        await _close_one(uow, repo, view, company, frequency, period, latest.now, carried)
    return []


async def _close_charges(
    repo: RatingRepository,
    view: _View,
    company: CompanyState,
    frequency: BillingFrequency,
    period: Period,
    carried: dict[CarriedKey, UsageRecord],
) -> tuple[list[ChargeCreated], dict[UUID, str]]:
    """What closing ``period`` charges: period-priced usage, bucket settlements, fixed fees (and, in advance,
    the next cycle's). Writes only bucket settlements; the preview runs it in a transaction it rolls back."""
    charges: list[ChargeCreated] = []
    keys: dict[UUID, str] = {}

    def take(priced: Priced | None) -> None:
        if priced is not None:
            for c in priced.charges:
                charges.append(c)
                keys[c.charge_id] = priced.rule_key

    candidates = _close_candidates(view, company, frequency, period)
    history = view.history(company.company_id)
    for candidate in candidates:
        for index, line in enumerate(candidate.plan.lines):
            if line.service_id is not None:
                take(await _price_line_at_close(repo, view, company, candidate, index, period, carried))
        if candidate.plan.bucket is not None:
            for priced in await _settle_buckets(repo, view, company, candidate, period):
                take(priced)
        for priced in await _fixed_fees(repo, view, company, candidate, period, history):
            take(priced)
    existing = await repo.existing_charges([c.charge_id for c in charges])
    return [c for c in charges if c.charge_id not in existing], keys


async def _close_one(
    uow: UnitOfWork,
    repo: RatingRepository,
    view: _View,
    company: CompanyState,
    frequency: BillingFrequency,
    period: Period,
    now: datetime,
    carried: dict[CarriedKey, UsageRecord],
) -> None:
    tenant_id = uow.require_tenant()
    charges, keys = await _close_charges(repo, view, company, frequency, period, carried)
    if charges:
        counted = await repo.count_into_open_periods(tenant_id, _counts([(c, frequency) for c in charges]))
        if not counted:
            return  # closed meanwhile by a concurrent tick: that one published everything
        await _send(uow, repo, charges, keys)
    count = await repo.close_period(tenant_id, company.company_id, frequency.value, period.start, period.end)
    if count is None:
        return
    done_event = PeriodCompleted(
        tenant_id=tenant_id,
        company_id=company.company_id,
        company_ref=company.company_ref,
        period_start=period.start,
        period_end=period.end,
        charge_count=count,
        closed_at=now,
        livemode=view.livemode,
    )
    uow.publish(topic=topics.RATING_CHARGES.name, key=f"{tenant_id}:{company.company_ref}", message=done_event)
    await audit.record(
        uow,
        actor=SYSTEM,
        action="period_closed",
        entity_type="billing_period",
        entity_id=f"{company.company_id}:{frequency.value}:{period.start.isoformat()}",
        at=now,
        after={"period_end": period.end.isoformat(), "charge_count": count},
    )


async def _settle_buckets(
    repo: RatingRepository, view: _View, company: CompanyState, candidate: PlanCandidate, period: Period
) -> list[Priced]:
    """Settle every bucket period that ended by the end of the billing period being closed, in order."""
    bucket = candidate.plan.bucket
    assert bucket is not None
    frequency = BillingFrequency(bucket.period)
    assignment = candidate.assignment
    last = await repo.last_bucket(assignment.assignment_id)
    if last is None:
        bp, carried = period_containing(assignment.start_date, frequency=frequency, anchor=company.billing_anchor), []
    else:
        bp = period_containing(last[0], frequency=frequency, anchor=company.billing_anchor)
        carried = last[1]
    out: list[Priced] = []
    while bp.end <= period.end and (assignment.end_date is None or bp.start < assignment.end_date):
        records = await repo.deferred(assignment.assignment_id, bp.start, "bucket")
        entries = [(r["record_id"], r["quantity"]) for r in records]
        settlement = settle(bucket, carried, entries, allocation=allocation_for(bucket, bp, assignment))
        await repo.save_bucket(
            company.tenant_id, company.company_id, assignment.assignment_id, bp.start, bp.end, settlement
        )
        out.append(
            bucket_overage(
                company=company,
                candidate=candidate,
                definition=bucket,
                settlement=settlement,
                bucket_period=bp,
                billed_in=period,
                service_of={r["record_id"]: view.services[r["service_id"]] for r in records},
                line_of=_lines_by_service(candidate.plan),
            )
        )
        carried = list(settlement.rolled_out)
        bp = next_period(bp, frequency=frequency, anchor=company.billing_anchor)
    return out


async def _fixed_fees(
    repo: RatingRepository,
    view: _View,
    company: CompanyState,
    candidate: PlanCandidate,
    period: Period,
    history: list[StatusChange],
) -> list[Priced]:
    """Settle each fixed line's fee for the cycle that closes; in advance, also charge the next cycle."""
    out: list[Priced] = []
    plan = candidate.plan
    frequency = BillingFrequency(plan.billing_frequency)
    for index, line in enumerate(plan.lines):
        target = fixed_target(line, view.services, view.bundles)
        if target is None:
            continue
        service = view.services.get(line.service_id) if line.service_id else None
        bundle = view.bundles.get(line.bundle_id) if line.bundle_id else None

        def terms_on(day: date, line: Any = line, service: Any = service, bundle: Any = bundle) -> Any:
            if bundle is not None:  # a bundle line is priced at the bundle's price unless the line overrides it
                base = ServiceState(
                    tenant_id=bundle.tenant_id,
                    service_id=bundle.bundle_id,
                    code=f"bundle:{bundle.name}",
                    name=bundle.name,
                    service_type=ServiceType.FIXED,
                    default_rate=bundle.price,
                    currency=bundle.currency,
                    unit="bundle",
                )
                return line_terms(base, line, day)
            return line_terms(service, line, day)

        final = fixed_fee(
            company=company,
            candidate=candidate,
            line_index=index,
            target=target,
            unit_price_on=terms_on,
            cycle=period,
            billed_in=period,
            history=history,
        )
        sent = (await repo.sent_for_rules([final.rule_key])).get(final.rule_key)
        if sent is None:
            out.append(final)
        else:
            sent_charges = [ChargeCreated.model_validate(d) for d in await repo.charges_of_rule(final.rule_key)]
            adj = adjustment(
                priced=final,
                sent_total=sent[0],
                sent_ids=sent[1],
                billed_in=period,
                reason=f"settled at the end of {period.start.isoformat()} to {period.end.isoformat()}",
                template=sent_charges[0],
                sent=sent_charges,
            )
            if adj is not None:
                out.append(Priced(final.rule_key, [adj.model_copy(update={"late": False})]))
        if plan.billing_timing is BillingTiming.ADVANCE:
            upcoming = next_period(period, frequency=frequency, anchor=company.billing_anchor)
            a = candidate.assignment
            if a.end_date is None or a.end_date > upcoming.start:
                out.append(
                    fixed_fee(
                        company=company,
                        candidate=candidate,
                        line_index=index,
                        target=target,
                        unit_price_on=terms_on,
                        cycle=upcoming,
                        billed_in=period,
                        history=history,
                    )
                )
    return out


# -- queries ---------------------------------------------------------------------------------------------


class _Rollback(Exception):
    pass


async def preview(pool: Any, *, tenant_id: UUID, company_id: UUID) -> list[dict[str, Any]]:
    """The provisional charges of the client's open periods (one per plan frequency): what is charged so far
    plus what closing the period now would charge. Nothing is kept: the transaction is rolled back."""
    result: list[dict[str, Any]] = []
    try:
        async with unit_of_work(pool, tenant_id=tenant_id) as uow:
            repo = RatingRepository(uow.conn)
            tenant = await repo.tenant(tenant_id)
            if tenant is None:
                raise LookupError(f"tenant {tenant_id} is not in rating's catalog view")
            tz, livemode = tenant
            view = await _view(repo, tz, livemode, [company_id], [])
            company = view.companies.get(company_id)
            if company is None:
                raise LookupError(f"client {company_id} is not in rating's catalog view")
            now = await repo.clock(tenant_id) or datetime.now(UTC)
            today = local_date(now, tz=tz)
            frequencies = sorted({c.plan.billing_frequency for c in view.candidates(company_id)})
            parked = [_parked(r) for r in await repo.unrated(company_id, 5000)]
            for f in frequencies:
                frequency = BillingFrequency(f)
                period = period_containing(today, frequency=frequency, anchor=company.billing_anchor)
                booked = await repo.charges_in_period(company_id, period.start, period.end)
                carried = await _carried_in(repo, view, [(company, frequency, period)])
                at_close, _ = await _close_charges(repo, view, company, frequency, period, carried)
                charges = [*booked, *(c.model_dump(mode="json") for c in at_close)]
                unbilled = [_not_charged(r) for r in await repo.not_charged(company_id, period.start)]
                result.append(
                    {
                        "frequency": frequency.value,
                        "period_start": period.start.isoformat(),
                        "period_end": period.end.isoformat(),
                        "as_of": now.isoformat(),
                        "provisional": True,
                        "charges": charges,
                        "total": str(sum((Decimal(c["amount"]) for c in charges), Decimal(0))),
                        "left_out": [
                            *unbilled,
                            *(p for p in parked if period.contains(local_date(_instant(p["occurred_at"]), tz=tz))),
                        ],
                    }
                )
            raise _Rollback
    except _Rollback:
        pass
    return result


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _parked(row: dict[str, Any]) -> dict[str, Any]:
    """A parked record as the API shows it: what it is and why rating does not bill it (yet)."""
    doc = row["document"]
    return {
        "record_id": str(row["record_id"]),
        "record_type": doc.get("record_type", "usage"),
        "status": "not_billed_yet",
        "source": doc.get("source"),
        "external_id": doc.get("event_id") or doc.get("entry_id"),
        "company_id": doc.get("company_id"),
        "company_ref": doc.get("company_ref"),
        "service_id": doc.get("service_id"),
        "service_ref": doc.get("service_ref"),
        "kind": doc.get("kind"),
        "quantity": doc.get("quantity") if doc.get("record_type", "usage") == "usage" else doc.get("hours"),
        "occurred_at": doc.get("occurred_at") or doc.get("start_time"),
        "reason": row["reason"],
    }


def _not_charged(row: dict[str, Any]) -> dict[str, Any]:
    doc = row["document"]
    return {
        "record_id": str(row["record_id"]),
        "record_type": row["record_type"],
        "status": row["disposition"],
        "source": doc.get("source"),
        "external_id": doc.get("event_id") or doc.get("entry_id"),
        "company_ref": doc.get("company_ref"),
        "service_ref": doc.get("service_ref"),
        "quantity": str(row["quantity"]),
        "occurred_at": row["occurred_at"].isoformat(),
        "reason": row["note"],
    }


async def parked_records(pool: Any, *, tenant_id: UUID, company_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    """Records rating cannot bill yet, with the reason: no plan of the client covers the record's day, or the
    client, service or tenant has not reached rating's catalog view. Each is priced again when the catalog
    changes (a back-dated assignment, the service added to a plan); a snapshot among them still counts as the
    client's count in force (docs/billing-rules.md §3)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        rows = await RatingRepository(uow.conn).unrated(company_id, limit)
    return [_parked(r) for r in rows]


async def explain_charge(pool: Any, *, tenant_id: UUID, charge_id: UUID) -> dict[str, Any] | None:
    """Why a charge is this amount: the charge as sent (records, rule, model, tiers, proration, bucket), the
    other charges of the same pricing rule, the charges it corrects, and the ledger of its source records."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = RatingRepository(uow.conn)
        found = await repo.charge(charge_id)
        if found is None:
            return None
        document, rule_key = found
        charge = ChargeCreated.model_validate(document)
        siblings = await repo.charges_of_rule(rule_key) if rule_key else [document]
        corrects = [d for d in [await repo.charge(i) for i in charge.corrects_charge_ids] if d is not None]
        records = await repo.ledger(charge.source_records[:1000])
        return {
            "charge": document,
            "rule_key": rule_key,
            "explanation": charge.explanation or _flat_explanation(charge),
            "rule_charges": siblings,
            "rule_total": str(sum((Decimal(d["amount"]) for d in siblings), Decimal(0))),
            "corrects": [d for d, _ in corrects],
            "source_records": records,
        }


def _flat_explanation(c: ChargeCreated) -> str:
    return f"{c.quantity} {c.unit} x {c.unit_price} ({c.price_rule.rate_source}) = {c.amount}"


async def bucket_usage(pool: Any, *, tenant_id: UUID, company_id: UUID) -> list[dict[str, Any]]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        rows = await RatingRepository(uow.conn).bucket_usage(company_id)
    return [{k: (str(v) if not isinstance(v, (list, dict)) else v) for k, v in r.items()} for r in rows]
