"""Invoicing's report routes (``GET /v1/reports/…``): read invoicing's own tables, aggregate in
`domain/reports.py`, answer JSON or CSV (``?format=csv``). Tenant from the bearer token; ``reports:read``.

Invoicing answers for what it owns (billed amounts, currency totals, receivables): no reporting service
reads its schema (docs/architecture.md "Reports").
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.invoicing.adapters.reports import ReportsRepository
from services.invoicing.domain import reports
from shared.auth import Permission, Principal, requires
from shared.db.uow import unit_of_work
from shared.reports import Format, respond

Reporter = Annotated[Principal, Depends(requires(Permission.REPORTS_READ))]
From = Annotated[date, Query(alias="from", description="Periods starting on or after this date")]
To = Annotated[date, Query(description="Periods starting before this date (exclusive)")]
Fmt = Annotated[Format, Query(description="json (default) or csv")]

router = APIRouter(prefix="/v1/reports", tags=["reports"])

BILLING_COLUMNS = ("key", "label", "currency", "amount", "discounts", "net", "tax", "total", "invoices")
CURRENCY_COLUMNS = ("currency", "invoices", "total", "total_in_base", "unconverted")
AGING_COLUMNS = ("company_id", "company_name", "currency", *reports.BUCKETS, "total", "invoices")


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _range(start: date, end: date) -> None:
    if end <= start:
        raise HTTPException(
            422, detail=[{"loc": ["query", "to"], "msg": "to must be after from (the range is [from, to))"}]
        )


@router.get("/billing", summary="Billed amounts of issued invoices by plan type, category, service, client or period")
async def billing(
    request: Request,
    who: Reporter,
    group_by: Annotated[reports.GroupBy, Query(description="plan_type, service_category, service, client or period")],
    start: From,
    to: To,
    format: Fmt = Format.JSON,
) -> Response:
    _range(start, to)
    async with unit_of_work(_pool(request), tenant_id=who.tenant_id) as uow:
        repo = ReportsRepository(uow.conn)
        invoices = await repo.issued(reports.ISSUED, start, to, with_lines=True)
        names = await repo.names()
    rows = reports.billed(invoices, group_by, names)
    body = {"group_by": group_by.value, "from": start.isoformat(), "to": to.isoformat(), "rows": rows}
    return respond(body, fmt=format, rows=rows, columns=BILLING_COLUMNS, filename=f"billing-by-{group_by.value}")


@router.get("/currency-totals", summary="Issued totals per currency and in the base currency at pinned rates")
async def currency_totals(request: Request, who: Reporter, start: From, to: To, format: Fmt = Format.JSON) -> Response:
    _range(start, to)
    async with unit_of_work(_pool(request), tenant_id=who.tenant_id) as uow:
        repo = ReportsRepository(uow.conn)
        base = await repo.base_currency()
        invoices = await repo.issued(reports.ISSUED, start, to, with_lines=False)
    if base is None:
        raise HTTPException(409, detail="invoicing does not know the tenant's base currency yet (catalog tenant event)")
    body = {"from": start.isoformat(), "to": to.isoformat()} | reports.currency_totals(invoices, base)
    return respond(body, fmt=format, rows=body["rows"], columns=CURRENCY_COLUMNS, filename="currency-totals")


@router.get("/ar-aging", summary="Outstanding receivables per client and currency by days past due")
async def ar_aging(
    request: Request,
    who: Reporter,
    as_of: Annotated[date, Query(description="The date days past due are counted to")],
    format: Fmt = Format.JSON,
) -> Response:
    async with unit_of_work(_pool(request), tenant_id=who.tenant_id) as uow:
        invoices = await ReportsRepository(uow.conn).open_as_of(reports.OPEN, as_of)
    body = reports.aging(invoices, as_of)
    # CSV: the client rows, then one total row per currency (company_id empty, company_name "Total").
    return respond(body, fmt=format, rows=[*body["rows"], *body["totals"]], columns=AGING_COLUMNS, filename="ar-aging")
