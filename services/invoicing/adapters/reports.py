"""The SQL behind invoicing's reports: invoicing's own tables only (invoices, its catalog read model)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.invoicing.domain.reports import IssuedInvoice, Names, PinnedRate, ReportLine
from shared.db.pool import DbConnection


def _uuid(value: Any) -> UUID | None:
    return UUID(value) if value else None


def _invoice(row: Any, *, with_lines: bool) -> IssuedInvoice:
    document = row["document"] or {}
    lines: list[ReportLine] = []
    if with_lines:
        # The document's lines carry the amounts; the draft lines (same line ids) say which plan and service.
        drafted = {x["line_id"]: x for x in row["work_lines"] or []}
        for line in document.get("lines", []):
            draft = drafted.get(line["line_id"], {})
            lines.append(
                ReportLine(
                    plan_id=_uuid(draft.get("plan_id")),
                    service_id=_uuid(draft.get("service_id")),
                    service_ref=line.get("service_ref"),
                    amount=Decimal(line["amount"]),
                    discount=Decimal(line["discount_amount"]),
                    net=Decimal(line["net_amount"]),
                    tax=Decimal(line["tax_amount"]),
                    total=Decimal(line["total"]),
                )
            )
    rates = [
        PinnedRate(currency=r["currency"], base_currency=r["base_currency"], rate=Decimal(r["rate"]))
        for r in row["rates"] or []
    ]
    customer = document.get("customer") or {}
    return IssuedInvoice(
        invoice_id=row["invoice_id"],
        invoice_number=row["invoice_number"],
        company_id=row["company_id"],
        company_name=customer.get("name") or row["company_name"] or row["company_ref"] or str(row["company_id"]),
        status=row["status"],
        currency=row["currency"].strip(),
        period_start=row["period_start"],
        period_end=row["period_end"],
        issue_date=row["issue_date"],
        due_date=row["due_date"],
        total=row["total"],
        amount_paid=row["amount_paid"],
        credits_applied=row["credits_applied"],
        lines=lines,
        rates=rates,
    )


_SELECT = """
    SELECT i.invoice_id, i.invoice_number, i.company_id, i.company_ref, i.status, i.currency, i.period_start,
           i.period_end, i.issue_date, i.due_date, i.total, i.amount_paid, i.credits_applied,
           {document} AS document, {work_lines} AS work_lines, i.pinned -> 'exchange_rates' AS rates,
           c.state ->> 'name' AS company_name
    FROM invoices i LEFT JOIN companies c ON c.tenant_id = i.tenant_id AND c.company_id = i.company_id
"""


class ReportsRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def issued(self, statuses: Sequence[str], start: date, end: date, *, with_lines: bool) -> list[IssuedInvoice]:
        """Invoices in ``statuses`` whose period starts in ``[start, end)``."""
        select = _SELECT.format(
            document="i.document" if with_lines else "jsonb_build_object('customer', i.document -> 'customer')",
            work_lines="i.work -> 'lines'" if with_lines else "NULL::jsonb",
        )
        rows = await self._conn.fetch(
            select + " WHERE i.status = ANY($1::text[]) AND i.period_start >= $2 AND i.period_start < $3"
            " ORDER BY i.period_start, i.invoice_number",
            list(statuses),
            start,
            end,
        )
        return [_invoice(r, with_lines=with_lines) for r in rows]

    async def open_as_of(self, statuses: Sequence[str], as_of: date) -> list[IssuedInvoice]:
        """Invoices in ``statuses`` issued on or before ``as_of``."""
        select = _SELECT.format(
            document="jsonb_build_object('customer', i.document -> 'customer')", work_lines="NULL::jsonb"
        )
        rows = await self._conn.fetch(
            select + " WHERE i.status = ANY($1::text[]) AND i.issue_date <= $2 ORDER BY i.due_date, i.invoice_number",
            list(statuses),
            as_of,
        )
        return [_invoice(r, with_lines=False) for r in rows]

    async def names(self) -> Names:
        rows = await self._conn.fetch(
            """SELECT entity_type, entity_id, state FROM catalog_entities
               WHERE entity_type IN ('plan', 'service', 'category')"""
        )
        plan_types: dict[UUID, str] = {}
        service_names: dict[UUID, str] = {}
        service_categories: dict[UUID, UUID | None] = {}
        category_names: dict[UUID, str] = {}
        for r in rows:
            state = r["state"]
            if r["entity_type"] == "plan":
                plan_types[r["entity_id"]] = state["plan_type"]
            elif r["entity_type"] == "service":
                service_names[r["entity_id"]] = state["name"]
                service_categories[r["entity_id"]] = _uuid(state.get("category_id"))
            else:
                category_names[r["entity_id"]] = state["name"]
        return Names(plan_types, service_names, service_categories, category_names)

    async def base_currency(self) -> str | None:
        value = await self._conn.fetchval("SELECT base_currency FROM tenants")
        return value.strip() if isinstance(value, str) else None
