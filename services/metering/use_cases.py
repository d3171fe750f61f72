"""Metering use cases. Each runs inside the kernel's batch transaction (one unit of work per batch)."""

from __future__ import annotations

from collections.abc import Sequence

from services.metering.adapters.repository import MeteringRepository, StoredRecord
from services.metering.domain.acceptance import Decision, Verdict, decide, record_id
from shared import topics
from shared.contracts.catalog import CatalogEvent, CompanyState, ServiceState, TenantState
from shared.contracts.usage import UsageRecord
from shared.db.uow import UnitOfWork
from shared.messaging.consumer import Reject, Rejections
from shared.messaging.envelope import Parsed


async def accept_usage(uow: UnitOfWork, items: Sequence[Parsed[UsageRecord]]) -> Rejections[UsageRecord]:
    """Store each new record once; forward the mapped ones to rating; refuse conflicts and bad units.

    The same (source, event_id) with the same content is a no-op; with different content it is a conflict.
    Records whose tenant, client or service is not in the catalog yet are kept as unmapped, never dropped.
    """
    tenant = uow.require_tenant()
    repo = MeteringRepository(uow.conn)
    # A tenant, client or service whose catalog event is still on its way (another topic) is not an
    # error: the record is kept as unmapped and mapped when the catalog event arrives.
    tenant_known = await repo.tenant_known(tenant)
    companies = await repo.companies_by_ref(tenant, {(i.body.source, i.body.company_ref) for i in items})
    services = await repo.services_by_code(tenant, {i.body.service_ref for i in items})

    refused: Rejections[UsageRecord] = []
    first_of_key: dict[tuple[str, str], tuple[Parsed[UsageRecord], Decision, StoredRecord]] = {}
    repeats: list[Parsed[UsageRecord]] = []
    for item in items:
        r = item.body
        key = (r.source, r.event_id)
        if key in first_of_key:
            repeats.append(item)  # the same id twice in one batch: judged against the stored one below
            continue
        decision = decide(
            r, companies.get((r.source, r.company_ref)), services.get(r.service_ref), tenant_known=tenant_known
        )
        if decision.verdict is Verdict.REJECTED:
            refused.append(
                (
                    item,
                    Reject(decision.reason or "rejected", error_class="validation_error", field=decision.field),
                )
            )
            continue
        first_of_key[key] = (item, decision, _stored(r, decision))

    inserted = await repo.insert_new(tenant, [s for _, _, s in first_of_key.values()])
    for key, (_, decision, _) in first_of_key.items():
        if key in inserted and decision.accepted is not None:
            uow.publish(
                topic=topics.METERING_ACCEPTED.name,
                key=decision.accepted.key(),
                message=decision.accepted,
                message_id=decision.accepted.record_id,
            )

    maybe_conflicts = [(i, s) for k, (i, _, s) in first_of_key.items() if k not in inserted]
    maybe_conflicts += [(i, _stored(i.body, None)) for i in repeats]
    if maybe_conflicts:
        stored = await repo.fingerprints(tenant, [(s.source, s.event_id) for _, s in maybe_conflicts])
        for item, s in maybe_conflicts:
            if stored.get((s.source, s.event_id)) != s.fingerprint:
                refused.append(
                    (
                        item,
                        Reject(
                            f"event_id {s.event_id!r} from {s.source!r} was already received with different content",
                            error_class="conflict",
                            field="event_id",
                        ),
                    )
                )
    return refused


def _stored(r: UsageRecord, decision: Decision | None) -> StoredRecord:
    return StoredRecord(
        source=r.source,
        event_id=r.event_id,
        record_id=record_id(r.tenant_id, r.source, r.event_id),
        fingerprint=r.content_fingerprint(),
        status=decision.verdict.value if decision else "accepted",
        reason=decision.reason if decision else None,
        company_ref=r.company_ref,
        service_ref=r.service_ref,
        quantity=r.quantity,
        occurred_at=r.occurred_at,
        payload=r.model_dump(mode="json"),
    )


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    """Keep the read model of tenants, clients and services that metering maps records with, then map the
    records that were waiting for it."""
    repo = MeteringRepository(uow.conn)
    for item in items:
        event, state = item.body, item.body.state
        if isinstance(state, TenantState):
            await repo.save_tenant(state.tenant_id, event.version)
        elif isinstance(state, CompanyState):
            await repo.save_company(state, event.version)
        elif isinstance(state, ServiceState):
            await repo.save_service(state, event.version)
    await remap_unmapped(uow, repo)
    return []


async def remap_unmapped(uow: UnitOfWork, repo: MeteringRepository) -> None:
    tenant = uow.require_tenant()
    waiting = [UsageRecord.model_validate(doc) for doc in await repo.unmapped(tenant)]
    if not waiting:
        return
    tenant_known = await repo.tenant_known(tenant)
    companies = await repo.companies_by_ref(tenant, {(r.source, r.company_ref) for r in waiting})
    services = await repo.services_by_code(tenant, {r.service_ref for r in waiting})
    for r in waiting:
        decision = decide(
            r, companies.get((r.source, r.company_ref)), services.get(r.service_ref), tenant_known=tenant_known
        )
        if decision.verdict is Verdict.UNMAPPED:
            continue
        await repo.set_status(tenant, r.source, r.event_id, decision.verdict.value, decision.reason)
        if decision.accepted is not None:
            uow.publish(
                topic=topics.METERING_ACCEPTED.name,
                key=decision.accepted.key(),
                message=decision.accepted,
                message_id=decision.accepted.record_id,
            )
