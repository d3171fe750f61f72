"""``GET /v1/audit``: every service's audit trail and the verification of its hash chain, mounted by the kernel.

`ServiceRuntime` includes this router in every service, so each of the seven answers for its own trail
(tenant from the bearer token, row-level security on). A cross-service audit report is the caller asking
each service in turn (the dashboard does): no service reads another's trail.

The verification walks the tenant's whole chain in this service (not only the entries returned): a filtered
page is trustworthy only if the chain it was cut from holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Response

from shared import audit
from shared.auth import Permission, Principal, requires
from shared.db.uow import unit_of_work
from shared.reports import Format, respond

COLUMNS = ("seq", "at", "actor", "action", "entity_type", "entity_id", "before", "after", "audit_id", "hash")
MAX_LIMIT = 1000
Auditor = Annotated[Principal, Depends(requires(Permission.AUDIT_READ))]


def audit_router(service_name: str, pool: Callable[[], asyncpg.Pool]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get(
        "/audit",
        summary="This service's audit entries, filtered, with the verification of the tenant's hash chain",
    )
    async def audit_report(
        who: Auditor,
        entity_type: Annotated[str | None, Query(description="Only this entity type", examples=["invoice"])] = None,
        entity_id: Annotated[str | None, Query(description="Only this entity")] = None,
        actor: Annotated[
            str | None, Query(description="Only this actor (user:<id> or system:<service>)", examples=["user:…"])
        ] = None,
        from_: Annotated[
            datetime | None,
            Query(alias="from", description="Entries at or after this time (a date is midnight UTC)"),
        ] = None,
        to: Annotated[datetime | None, Query(description="Entries before this time (exclusive)")] = None,
        after: Annotated[
            int | None, Query(ge=0, le=2**63 - 1, description="Keyset paging: entries after this seq")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        format: Annotated[Format, Query(description="json (default) or csv")] = Format.JSON,
    ) -> Response:
        wanted = audit.AuditFilter(  # an empty filter (``?actor=``) is no filter
            entity_type=entity_type or None,
            entity_id=entity_id or None,
            actor=actor or None,
            since=from_,
            until=to,
            after_seq=after,
            limit=limit,
        )
        async with unit_of_work(pool(), tenant_id=who.tenant_id) as uow:
            entries = await audit.query(uow, wanted)
            checked = await audit.verify(uow)
        rows: list[dict[str, Any]] = [asdict(e) for e in entries]
        body = {
            "service": service_name,
            "entries": rows,
            "next_after": rows[-1]["seq"] if len(rows) == limit else None,
            "verification": {
                "ok": checked.ok,
                "checked": checked.checked,
                "first_broken": checked.broken_seq,
                "problem": checked.problem,
            },
        }
        return respond(body, fmt=format, rows=rows, columns=COLUMNS, filename=f"audit-{service_name}")

    return router
