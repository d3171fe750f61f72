"""Rating's report routes (``GET /v1/reports/…``): bucket usage per client and period from rating's own
tables, JSON or CSV (``?format=csv``). Tenant from the bearer token; ``reports:read``.

Rating answers for what it owns (bucket settlements and the charges it sent); see docs/architecture.md
"Reports".
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.rating.adapters.reports import ReportsRepository
from services.rating.domain import reports
from shared.auth import Permission, Principal, requires
from shared.db.uow import unit_of_work
from shared.reports import Format, respond

Reporter = Annotated[Principal, Depends(requires(Permission.REPORTS_READ))]

router = APIRouter(prefix="/v1/reports", tags=["reports"])

COLUMNS = (
    "company_id",
    "company_name",
    "assignment_id",
    "plan_id",
    "bucket",
    "period_start",
    "period_end",
    "allocated_hours",
    "rolled_in_hours",
    "used_hours",
    "overage_hours",
    "rolled_over_hours",
    "expired_hours",
    "remaining_hours",
    "overage_amount",
    "currency",
)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


@router.get("/bucket-usage", summary="Bucket usage per client and bucket period: hours and overage charged")
async def bucket_usage(
    request: Request,
    who: Reporter,
    start: Annotated[date, Query(alias="from", description="Bucket periods starting on or after this date")],
    to: Annotated[date, Query(description="Bucket periods starting before this date (exclusive)")],
    company_id: Annotated[UUID | None, Query(description="Only this client")] = None,
    format: Annotated[Format, Query(description="json (default) or csv")] = Format.JSON,
) -> Response:
    if to <= start:
        problem = {"loc": ["query", "to"], "msg": "to must be after from (the range is [from, to))"}
        raise HTTPException(422, detail=[problem])
    async with unit_of_work(_pool(request), tenant_id=who.tenant_id) as uow:
        settled = await ReportsRepository(uow.conn).settled_buckets(start, to, company_id)
    rows = reports.report(settled)
    body = {"from": start.isoformat(), "to": to.isoformat(), "company_id": company_id, "rows": rows}
    return respond(body, fmt=format, rows=rows, columns=COLUMNS, filename="bucket-usage")
