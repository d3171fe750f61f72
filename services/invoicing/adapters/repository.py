"""Invoicing persistence (asyncpg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.invoicing.domain.ledger import Entry
from services.invoicing.domain.pricing import DraftLine
from services.invoicing.domain.quoting import Work
from shared.contracts.approvals import ApprovalRuleSet
from shared.contracts.catalog import (
    CatalogEvent,
    CategoryState,
    CompanyState,
    DiscountState,
    PlanState,
    ServiceState,
    TenantState,
)
from shared.contracts.invoices import CreditNote, Invoice
from shared.contracts.rating import ChargeCreated, PeriodCompleted
from shared.db.pool import DbConnection

TENANT_DEFAULT = UUID(int=0)
"""``invoice_settings.company_id`` of the tenant's default."""


class InvoicingRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def save_catalog(self, event: CatalogEvent) -> None:
        state = event.state
        if isinstance(state, TenantState):
            # base_currency (reports) also fills in from a republished event of the same version.
            await self._conn.execute(
                """INSERT INTO tenants VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE
                   SET livemode = EXCLUDED.livemode, timezone = EXCLUDED.timezone, version = EXCLUDED.version,
                       base_currency = EXCLUDED.base_currency
                   WHERE tenants.version < EXCLUDED.version OR tenants.base_currency IS NULL""",
                state.tenant_id,
                state.mode == "live",
                state.timezone,
                event.version,
                state.base_currency,
            )
        elif isinstance(state, DiscountState | ServiceState | PlanState | CategoryState):  # plans, categories: reports
            await self._conn.execute(
                """INSERT INTO catalog_entities VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE
                   SET state = EXCLUDED.state, version = EXCLUDED.version, deleted = EXCLUDED.deleted
                   WHERE catalog_entities.version < EXCLUDED.version""",
                event.tenant_id,
                event.entity_type,
                event.entity_id,
                state.model_dump(mode="json"),
                event.version,
                event.deleted,
            )
        elif isinstance(state, CompanyState):
            await self._conn.execute(
                """INSERT INTO companies VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, company_id) DO UPDATE
                   SET state = EXCLUDED.state, version = EXCLUDED.version
                   WHERE companies.version < EXCLUDED.version""",
                state.tenant_id,
                state.company_id,
                state.model_dump(mode="json"),
                event.version,
            )

    async def livemode(self, tenant_id: UUID) -> bool | None:
        value: bool | None = await self._conn.fetchval("SELECT livemode FROM tenants WHERE tenant_id = $1", tenant_id)
        return value

    async def timezone(self, tenant_id: UUID) -> str | None:
        value: str | None = await self._conn.fetchval("SELECT timezone FROM tenants WHERE tenant_id = $1", tenant_id)
        return value

    async def company(self, company_id: UUID) -> CompanyState | None:
        doc = await self._conn.fetchval("SELECT state FROM companies WHERE company_id = $1", company_id)
        return CompanyState.model_validate(doc) if doc else None

    async def save_charges(self, charges: Sequence[ChargeCreated]) -> None:
        await self._conn.execute(
            """INSERT INTO charges SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[],
                                                       $5::date[], $6::jsonb[])
               ON CONFLICT DO NOTHING""",
            [c.tenant_id for c in charges],
            [c.charge_id for c in charges],
            [c.company_id for c in charges],
            [c.period_start for c in charges],
            [c.period_end for c in charges],
            [c.model_dump(mode="json") for c in charges],
        )

    async def charges_of(self, company_id: UUID, start: date, end: date) -> list[ChargeCreated]:
        rows = await self._conn.fetch(
            """SELECT document FROM charges WHERE company_id = $1 AND period_start = $2 AND period_end = $3
               ORDER BY charge_id""",
            company_id,
            start,
            end,
        )
        return [ChargeCreated.model_validate(r["document"]) for r in rows]

    async def discounts(self) -> list[DiscountState]:
        rows = await self._conn.fetch(
            "SELECT state FROM catalog_entities WHERE entity_type = 'discount' AND NOT deleted ORDER BY entity_id"
        )
        return [DiscountState.model_validate(r["state"]) for r in rows]

    async def tax_categories(self) -> dict[UUID, str | None]:
        rows = await self._conn.fetch(
            "SELECT entity_id, state->>'tax_category' AS c FROM catalog_entities WHERE entity_type = 'service'"
        )
        return {r["entity_id"]: r["c"] for r in rows}

    async def claim_invoice(self, invoice_id: UUID, done: PeriodCompleted, *, work: Work, currency: str) -> bool:
        """Reserve the client's invoice for the period; False if it already exists (a repeated run)."""
        claimed = await self._conn.fetchval(
            """INSERT INTO invoices (tenant_id, invoice_id, company_id, period_start, period_end, status,
                                     company_ref, closed_at, livemode, work, issue_date, currency, updated_at)
               VALUES (app_tenant(), $1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $6)
               ON CONFLICT (tenant_id, company_id, period_start, period_end) DO NOTHING RETURNING 1""",
            invoice_id,
            done.company_id,
            done.period_start,
            done.period_end,
            done.company_ref,
            done.closed_at,
            done.livemode,
            work.model_dump(mode="json"),
            work.issue_date,
            currency,
        )
        return bool(claimed)

    async def save_line_charges(self, invoice_id: UUID, lines: Sequence[DraftLine]) -> None:
        pairs = [(x.line_id, c) for x in lines for c in x.charge_ids]
        await self._conn.execute(
            """INSERT INTO invoice_line_charges
               SELECT app_tenant(), $1, l, c FROM unnest($2::uuid[], $3::uuid[]) AS t(l, c) ON CONFLICT DO NOTHING""",
            invoice_id,
            [p[0] for p in pairs],
            [p[1] for p in pairs],
        )

    async def invoice_row(self, invoice_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM invoices WHERE invoice_id = $1" + (" FOR UPDATE" if lock else ""), invoice_id
        )
        return row

    async def save_work(self, invoice_id: UUID, *, status: str, work: Work, attempt: int, at: datetime) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = $2, work = $3, attempt = $4, held_reason = NULL, updated_at = $5
               WHERE invoice_id = $1""",
            invoice_id,
            status,
            work.model_dump(mode="json"),
            attempt,
            at,
        )

    async def next_number(self, yymm: str, *, table: str = "invoice_numbers") -> int:
        assert table in ("invoice_numbers", "credit_note_numbers")
        value: int = await self._conn.fetchval(
            f"""INSERT INTO {table} VALUES (app_tenant(), $1, 1) ON CONFLICT (tenant_id, yymm)
               DO UPDATE SET last = {table}.last + 1 RETURNING last""",
            yymm,
        )
        return value

    async def finalize(self, invoice: Invoice, *, pinned: dict[str, object], at: datetime) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = 'finalized', invoice_number = $2, document = $3, held_reason = NULL,
                      pinned = $4, issue_date = $5, due_date = $6, currency = $7, total = $8, credits_applied = $9,
                      updated_at = $10
               WHERE invoice_id = $1""",
            invoice.invoice_id,
            invoice.invoice_number,
            invoice.model_dump(mode="json"),
            pinned,
            invoice.issue_date,
            invoice.due_date,
            invoice.currency,
            invoice.total,
            invoice.credits_applied,
            at,
        )

    async def hold(self, invoice_id: UUID, reason: str, *, at: datetime | None = None) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = 'held', held_reason = $2, updated_at = coalesce($3, updated_at)
               WHERE invoice_id = $1""",
            invoice_id,
            reason,
            at,
        )

    async def wait_for_approval(self, invoice_id: UUID, reason: str, request_id: UUID, *, at: datetime) -> None:
        """The draft waits for approvals' decision on the whole invoice: no number is spent."""
        await self._conn.execute(
            """UPDATE invoices SET status = 'draft', held_reason = $2, approval_request_id = $3, updated_at = $4
               WHERE invoice_id = $1""",
            invoice_id,
            reason,
            request_id,
            at,
        )

    async def held_for(self, prefixes: tuple[str, ...]) -> list[asyncpg.Record]:
        """Held invoices whose reason starts with one of ``prefixes``, locked, oldest first."""
        return list(
            await self._conn.fetch(
                """SELECT * FROM invoices WHERE status = 'held' AND held_reason LIKE ANY ($1::text[])
                   ORDER BY closed_at, invoice_id FOR UPDATE""",
                [f"{p}%" for p in prefixes],
            )
        )

    async def set_draft_reason(self, invoice_id: UUID, reason: str, *, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE invoices SET held_reason = $2, updated_at = $3 WHERE invoice_id = $1", invoice_id, reason, at
        )

    # -- settings ------------------------------------------------------------------------------------------
    async def tax_inclusive(self, company_id: UUID) -> bool:
        """The client's setting, else the tenant's default, else tax-exclusive."""
        value: bool | None = await self._conn.fetchval(
            """SELECT tax_inclusive FROM invoice_settings WHERE company_id IN ($1, $2)
               ORDER BY company_id = $2 LIMIT 1""",
            company_id,
            TENANT_DEFAULT,
        )
        return bool(value)

    async def save_tax_inclusive(
        self, tenant_id: UUID, company_id: UUID, tax_inclusive: bool | None, *, at: datetime
    ) -> bool | None:
        """Set (or with None, for a client, drop) the setting; returns what it was."""
        before: bool | None = await self._conn.fetchval(
            "SELECT tax_inclusive FROM invoice_settings WHERE company_id = $1 FOR UPDATE", company_id
        )
        if tax_inclusive is None:
            await self._conn.execute("DELETE FROM invoice_settings WHERE company_id = $1", company_id)
        else:
            await self._conn.execute(
                """INSERT INTO invoice_settings (tenant_id, company_id, tax_inclusive, updated_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, company_id)
                   DO UPDATE SET tax_inclusive = EXCLUDED.tax_inclusive, updated_at = EXCLUDED.updated_at""",
                tenant_id,
                company_id,
                tax_inclusive,
                at,
            )
        return before

    # -- ledger --------------------------------------------------------------------------------------------
    async def credit_available(self, company_id: UUID) -> Decimal:
        value: Decimal = await self._conn.fetchval(
            "SELECT coalesce(sum(credit_effect), 0) FROM transactions WHERE company_id = $1", company_id
        )
        return value

    async def balance(self, company_id: UUID) -> tuple[Decimal, Decimal]:
        row = await self._conn.fetchrow(
            """SELECT coalesce(sum(balance_effect), 0) AS b, coalesce(sum(credit_effect), 0) AS c
               FROM transactions WHERE company_id = $1""",
            company_id,
        )
        assert row is not None
        return row["b"], row["c"]

    async def record(self, entry: Entry) -> None:
        await self._conn.execute(
            """INSERT INTO transactions (tenant_id, transaction_id, company_id, kind, amount, balance_effect,
                                         credit_effect, currency, invoice_id, reference_id, description, occurred_at)
               VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING""",
            entry.transaction_id,
            entry.company_id,
            entry.kind,
            entry.amount,
            entry.balance_effect,
            entry.credit_effect,
            entry.currency,
            entry.invoice_id,
            entry.reference_id,
            entry.description,
            entry.occurred_at,
        )

    async def history(self, company_id: UUID) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                """SELECT *, sum(balance_effect) OVER (ORDER BY seq) AS balance_after,
                          sum(credit_effect) OVER (ORDER BY seq) AS credit_after
                   FROM transactions WHERE company_id = $1 ORDER BY seq""",
                company_id,
            )
        )

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def invoices(
        self, *, status: str | None, company_id: UUID | None, limit: int, after: str | None
    ) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                """SELECT invoice_id, invoice_number, company_id, company_ref, period_start, period_end, status,
                          held_reason, issue_date, due_date, currency, total, credits_applied, amount_paid
                   FROM invoices
                   WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR company_id = $2)
                     AND ($3::text IS NULL OR invoice_id::text > $3)
                   ORDER BY invoice_id::text LIMIT $4""",
                status,
                company_id,
                after,
                limit,
            )
        )

    async def save_state(self, invoice: Invoice, *, status: str, at: datetime, **columns: object) -> None:
        """The invoice's lifecycle state and its document (status and paid / credited / due restated)."""
        allowed = {"sent_at", "viewed_at", "disputed_reason", "amount_credited"}
        assert set(columns) <= allowed, columns
        sets = "".join(f", {name} = ${i}" for i, name in enumerate(columns, start=6))
        await self._conn.execute(
            f"""UPDATE invoices SET status = $2, document = $3, amount_paid = $4, credits_applied = $5,
                       updated_at = ${6 + len(columns)}{sets}
                WHERE invoice_id = $1""",
            invoice.invoice_id,
            status,
            invoice.model_dump(mode="json"),
            invoice.amount_paid,
            invoice.credits_applied,
            *columns.values(),
            at,
        )

    async def cancel(self, invoice_id: UUID, *, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE invoices SET status = 'cancelled', updated_at = $2 WHERE invoice_id = $1", invoice_id, at
        )

    async def line_charges(self, invoice_id: UUID) -> dict[UUID, list[dict[str, object]]]:
        rows = await self._conn.fetch(
            """SELECT l.line_id, c.document FROM invoice_line_charges l
               JOIN charges c ON c.tenant_id = l.tenant_id AND c.charge_id = l.charge_id
               WHERE l.invoice_id = $1 ORDER BY l.line_id, l.charge_id""",
            invoice_id,
        )
        out: dict[UUID, list[dict[str, object]]] = {}
        for r in rows:
            out.setdefault(r["line_id"], []).append(r["document"])
        return out

    async def past_due(self, day: date) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                """SELECT * FROM invoices WHERE status IN ('finalized', 'sent', 'viewed', 'partially_paid')
                   AND due_date < $1 FOR UPDATE""",
                day,
            )
        )

    async def save_clock(self, tenant_id: UUID, now: datetime) -> None:
        await self._conn.execute(
            """INSERT INTO clocks VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET now = EXCLUDED.now
               WHERE clocks.now < EXCLUDED.now""",
            tenant_id,
            now,
        )

    async def clock(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval("SELECT now FROM clocks")
        return value

    # -- payments, refunds, credit notes ----------------------------------------------------------------------
    async def payment(self, payment_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM payments WHERE payment_id = $1" + (" FOR UPDATE" if lock else ""), payment_id
        )
        return row

    async def payments_of(self, invoice_id: UUID) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch("SELECT * FROM payments WHERE invoice_id = $1 ORDER BY received_at", invoice_id)
        )

    async def insert_payment(self, **p: object) -> None:
        await self._conn.execute(
            """INSERT INTO payments (tenant_id, payment_id, invoice_id, company_id, amount, currency, method, status,
                                     received_at)
               VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)""",
            p["payment_id"],
            p["invoice_id"],
            p["company_id"],
            p["amount"],
            p["currency"],
            p["method"],
            p["status"],
            p["received_at"],
        )

    async def update_payment(self, payment_id: UUID, *, status: str, applied: Decimal, refunded: Decimal) -> None:
        await self._conn.execute(
            "UPDATE payments SET status = $2, applied = $3, refunded = $4 WHERE payment_id = $1",
            payment_id,
            status,
            applied,
            refunded,
        )

    async def refund(self, refund_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM refunds WHERE refund_id = $1" + (" FOR UPDATE" if lock else ""), refund_id
        )
        return row

    async def insert_refund(self, **r: object) -> None:
        await self._conn.execute(
            """INSERT INTO refunds (tenant_id, refund_id, payment_id, invoice_id, amount, currency, reason, status,
                                    approval_request_id, requested_at)
               VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            r["refund_id"],
            r["payment_id"],
            r["invoice_id"],
            r["amount"],
            r["currency"],
            r["reason"],
            r["status"],
            r["approval_request_id"],
            r["requested_at"],
        )

    async def set_refund_status(self, refund_id: UUID, status: str, *, at: datetime | None) -> None:
        await self._conn.execute(
            "UPDATE refunds SET status = $2, refunded_at = $3 WHERE refund_id = $1", refund_id, status, at
        )

    async def pending_refunds(self, payment_id: UUID) -> Decimal:
        value: Decimal = await self._conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status = 'awaiting_approval'",
            payment_id,
        )
        return value

    async def credit_note_row(self, credit_note_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM credit_notes WHERE credit_note_id = $1" + (" FOR UPDATE" if lock else ""), credit_note_id
        )
        return row

    async def credit_notes_of(self, invoice_id: UUID) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                "SELECT * FROM credit_notes WHERE invoice_id = $1 ORDER BY created_at, credit_note_id", invoice_id
            )
        )

    async def credited_total(self, invoice_id: UUID) -> Decimal:
        value: Decimal = await self._conn.fetchval(
            """SELECT coalesce(sum(total), 0) FROM credit_notes
               WHERE invoice_id = $1 AND status IN ('draft', 'awaiting_approval', 'approved', 'applied')""",
            invoice_id,
        )
        return value

    async def insert_credit_note(self, note: CreditNote, *, company_id: UUID, memo: str | None, at: datetime) -> None:
        await self._conn.execute(
            """INSERT INTO credit_notes (tenant_id, credit_note_id, invoice_id, company_id, reason, status, currency,
                                         total, document, memo, created_at, updated_at)
               VALUES (app_tenant(), $1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $9)""",
            note.credit_note_id,
            note.invoice_id,
            company_id,
            note.reason.value,
            note.currency,
            note.total,
            note.model_dump(mode="json"),
            memo,
            at,
        )

    async def set_credit_note(
        self,
        credit_note_id: UUID,
        *,
        status: str,
        at: datetime,
        document: CreditNote | None = None,
        approval_request_id: UUID | None = None,
    ) -> None:
        await self._conn.execute(
            """UPDATE credit_notes SET status = $2, updated_at = $3,
                      document = coalesce($4, document), credit_note_number = coalesce($5, credit_note_number),
                      approval_request_id = coalesce($6, approval_request_id)
               WHERE credit_note_id = $1""",
            credit_note_id,
            status,
            at,
            document.model_dump(mode="json") if document else None,
            document.credit_note_number if document else None,
            approval_request_id,
        )

    # -- approval rules ---------------------------------------------------------------------------------------
    async def save_rule_set(self, rules: ApprovalRuleSet) -> None:
        await self._conn.execute(
            """INSERT INTO approval_rule_sets VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE
               SET rule_set = EXCLUDED.rule_set, version = EXCLUDED.version
               WHERE approval_rule_sets.version < EXCLUDED.version""",
            rules.tenant_id,
            rules.model_dump(mode="json"),
            rules.version,
        )

    async def rule_set(self) -> ApprovalRuleSet | None:
        doc = await self._conn.fetchval("SELECT rule_set FROM approval_rule_sets")
        return ApprovalRuleSet.model_validate(doc) if doc else None

    # -- billing adjustments ------------------------------------------------------------------------------
    async def adjustment(self, adjustment_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM adjustments WHERE adjustment_id = $1" + (" FOR UPDATE" if lock else ""), adjustment_id
        )
        return row

    async def insert_adjustment(self, **a: object) -> None:
        await self._conn.execute(
            """INSERT INTO adjustments (tenant_id, adjustment_id, company_id, amount, currency, description, status,
                                        approval_request_id, created_at, updated_at)
               VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $8)""",
            a["adjustment_id"],
            a["company_id"],
            a["amount"],
            a["currency"],
            a["description"],
            a["status"],
            a["approval_request_id"],
            a["at"],
        )

    async def set_adjustment_status(self, adjustment_id: UUID, status: str, *, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE adjustments SET status = $2, updated_at = $3 WHERE adjustment_id = $1", adjustment_id, status, at
        )

    async def take_adjustments(self, company_id: UUID, invoice_id: UUID, *, at: datetime) -> list[asyncpg.Record]:
        """The client's approved adjustments not yet invoiced, now on ``invoice_id`` (in this transaction)."""
        return list(
            await self._conn.fetch(
                """UPDATE adjustments SET status = 'invoiced', invoice_id = $2, updated_at = $3
                   WHERE company_id = $1 AND status = 'approved' RETURNING *""",
                company_id,
                invoice_id,
                at,
            )
        )

    async def adjustments_of(
        self, *, company_id: UUID | None = None, invoice_id: UUID | None = None
    ) -> list[asyncpg.Record]:
        return list(
            await self._conn.fetch(
                """SELECT * FROM adjustments WHERE ($1::uuid IS NULL OR company_id = $1)
                   AND ($2::uuid IS NULL OR invoice_id = $2) ORDER BY created_at, adjustment_id""",
                company_id,
                invoice_id,
            )
        )

    async def invoices_holding(self, charge_ids: Sequence[UUID]) -> list[UUID]:
        rows = await self._conn.fetch(
            """SELECT DISTINCT l.invoice_id FROM invoice_line_charges l JOIN invoices i USING (tenant_id, invoice_id)
               WHERE l.charge_id = ANY($1::uuid[]) AND i.invoice_number IS NOT NULL""",
            list(charge_ids),
        )
        return [r["invoice_id"] for r in rows]

    async def latest_issued(self, company_id: UUID) -> UUID | None:
        value: UUID | None = await self._conn.fetchval(
            """SELECT invoice_id FROM invoices WHERE company_id = $1 AND invoice_number IS NOT NULL
               AND status <> 'void' ORDER BY period_end DESC, invoice_number DESC LIMIT 1""",
            company_id,
        )
        return value

    async def mark_credited(self, invoice_id: UUID, reason: str, *, pinned: dict[str, object], at: datetime) -> None:
        await self._conn.execute(
            """UPDATE invoices SET status = 'credited', held_reason = $2, pinned = $3, updated_at = $4
               WHERE invoice_id = $1""",
            invoice_id,
            reason,
            pinned,
            at,
        )

    async def open_charges(self, company_id: UUID) -> list[ChargeCreated]:
        """The client's charges of periods not invoiced yet (the open period, or one not yet completed)."""
        rows = await self._conn.fetch(
            """SELECT c.document FROM charges c WHERE c.company_id = $1 AND NOT EXISTS (
                   SELECT 1 FROM invoices i WHERE i.company_id = c.company_id AND i.period_start = c.period_start
                   AND i.period_end = c.period_end)
               ORDER BY c.period_start, c.charge_id""",
            company_id,
        )
        return [ChargeCreated.model_validate(r["document"]) for r in rows]

    async def expire_credit_notes(self, older_than: datetime, *, at: datetime) -> list[asyncpg.Record]:
        """Drafts never issued, created before ``older_than``: expired (their credit is never given)."""
        return list(
            await self._conn.fetch(
                """UPDATE credit_notes SET status = 'expired', updated_at = $2
                   WHERE status = 'draft' AND created_at < $1 RETURNING credit_note_id, invoice_id, total""",
                older_than,
                at,
            )
        )
