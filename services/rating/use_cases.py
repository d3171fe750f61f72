"""Rating use cases, each inside the kernel's batch transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from uuid import UUID

from services.rating.adapters.repository import RatingRepository
from services.rating.domain.cycles import periods_to_close
from services.rating.domain.pricing import PlanCandidate, Unrated, move_to_period, price_usage
from shared import topics
from shared.contracts.catalog import BundleState, CatalogEvent, CompanyState, PlanState, ServiceState
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedUsage
from shared.contracts.rating import ChargeCreated, PeriodCompleted
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Rejections, Retry
from shared.messaging.envelope import Parsed
from shared.periods import BillingFrequency, local_date, period_containing


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    """Keep rating's catalog view, then re-rate records that were waiting for what just arrived."""
    repo = RatingRepository(uow.conn)
    for item in items:
        await repo.save_catalog(item.body)
    parked = await repo.take_unrated()
    if parked:
        await _rate(uow, repo, [AcceptedUsage.model_validate(doc) for doc in parked])
    return []


async def rate_usage(uow: UnitOfWork, items: Sequence[Parsed[AcceptedUsage]]) -> Rejections[AcceptedUsage]:
    """Price accepted usage into charges on the client's open billing period, and publish them.

    A record rating cannot price yet (its client, service or plan not in rating's catalog view, which
    arrives on another topic) is parked with the reason, never dropped, and re-rated when the catalog
    changes.
    """
    await _rate(uow, RatingRepository(uow.conn), [i.body for i in items])
    return []


async def _rate(uow: UnitOfWork, repo: RatingRepository, records: list[AcceptedUsage]) -> None:
    tenant_id = uow.require_tenant()
    tenant = await repo.tenant(tenant_id)
    if tenant is None:
        reason = f"tenant {tenant_id} is not in rating's catalog view yet"
        await repo.save_unrated(tenant_id, [(r.record_id, reason, r.model_dump(mode="json")) for r in records])
        return
    tz, _ = tenant
    companies: dict[UUID, CompanyState] = await repo.entities("company", list({r.company_id for r in records}))
    services: dict[UUID, ServiceState] = await repo.entities("service", list({r.service_id for r in records}))
    assignments = await repo.assignments_of(list(companies))
    plans: dict[UUID, PlanState] = await repo.entities("plan", list({a.plan_id for a in assignments}))
    bundle_ids = {line.bundle_id for p in plans.values() for line in p.lines if line.bundle_id is not None}
    bundles: dict[UUID, BundleState] = await repo.entities("bundle", list(bundle_ids))

    priced: list[tuple[ChargeCreated, BillingFrequency]] = []
    unrated: list[tuple[UUID, str, dict[str, object]]] = []
    for record in records:
        company = companies.get(record.company_id)
        if company is None:
            reason = f"client {record.company_ref!r} is not in rating's catalog view yet"
            unrated.append((record.record_id, reason, record.model_dump(mode="json")))
            continue
        candidates = [
            PlanCandidate(a, plans[a.plan_id])
            for a in assignments
            if a.company_id == company.company_id and a.plan_id in plans
        ]
        day = local_date(record.occurred_at, tz=tz)
        result = price_usage(
            record,
            day=day,
            company=company,
            service=services.get(record.service_id),
            candidates=candidates,
            bundles=bundles,
        )
        if isinstance(result, Unrated):
            unrated.append((record.record_id, result.reason, record.model_dump(mode="json")))
        else:
            priced.append(result)
    if unrated:
        await repo.save_unrated(tenant_id, unrated)
    if priced:
        await _book(uow, repo, tenant_id, tz, priced, companies)


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
        now = await repo.clock(tenant_id)
        if now is None:
            raise Retry("a period is closed but the tenant's clock is unknown")
        today = local_date(now, tz=tz)
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
    charges = [c for c, _ in fresh]
    await repo.insert_charges(charges)
    for charge in charges:
        uow.publish(
            topic=topics.RATING_CHARGES.name,
            key=f"{charge.tenant_id}:{charge.company_ref}",
            message=charge,
            message_id=charge.charge_id,
        )


def _counts(
    priced: list[tuple[ChargeCreated, BillingFrequency]],
) -> list[tuple[UUID, str, date, date, int]]:
    counts: dict[tuple[UUID, str, date, date], int] = defaultdict(int)
    for c, f in priced:
        counts[(c.company_id, f.value, c.period_start, c.period_end)] += 1
    return [(*k, n) for k, n in counts.items()]


async def close_periods(uow: UnitOfWork, items: Sequence[Parsed[ClockTick]]) -> Rejections[ClockTick]:
    """On a tick, close every billing period that has ended and announce it (after its charges)."""
    tenant_id = uow.require_tenant()
    repo = RatingRepository(uow.conn)
    tenant = await repo.tenant(tenant_id)
    if tenant is None:
        raise Retry(f"tenant {tenant_id} not yet in rating's catalog view")
    tz, livemode = tenant
    latest = max(items, key=lambda i: i.body.now).body
    if not await repo.set_clock(tenant_id, latest.now):
        return []
    today = local_date(latest.now, tz=tz)
    assignments = await repo.all_assignments()
    companies: dict[UUID, CompanyState] = await repo.entities("company", list({a.company_id for a in assignments}))
    plans: dict[UUID, PlanState] = await repo.entities("plan", list({a.plan_id for a in assignments}))
    done: set[tuple[UUID, str]] = set()
    for a in sorted(assignments, key=lambda a: (str(a.company_id), a.start_date)):
        company, plan = companies.get(a.company_id), plans.get(a.plan_id)
        if company is None or plan is None or (a.company_id, plan.billing_frequency) in done:
            continue
        done.add((a.company_id, plan.billing_frequency))
        frequency = BillingFrequency(plan.billing_frequency)
        starts = [x.start_date for x in assignments if x.company_id == a.company_id]
        last = await repo.last_closed_end(a.company_id, frequency.value)
        for period in periods_to_close(
            start=min(starts),
            last_closed_end=last,
            today=today,
            frequency=frequency,
            anchor=company.billing_anchor,
        ):
            count = await repo.close_period(tenant_id, a.company_id, frequency.value, period.start, period.end)
            if count is None:
                continue
            done_event = PeriodCompleted(
                tenant_id=tenant_id,
                company_id=a.company_id,
                company_ref=company.company_ref,
                period_start=period.start,
                period_end=period.end,
                charge_count=count,
                closed_at=latest.now,
                livemode=livemode,
            )
            uow.publish(topic=topics.RATING_CHARGES.name, key=f"{tenant_id}:{company.company_ref}", message=done_event)
    return []
