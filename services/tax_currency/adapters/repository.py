"""Tax-currency persistence (asyncpg). Every statement runs inside a tenant-scoped unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from services.tax_currency.domain.fx import ExchangeRate
from services.tax_currency.domain.taxes import Exemption, TaxRate
from shared.contracts.catalog import CatalogEvent, CompanyState, TenantState
from shared.db.pool import DbConnection


@dataclass(frozen=True, slots=True)
class StoredQuote:
    request_id: UUID
    invoice_id: UUID
    fingerprint: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class KnownCompany:
    company_id: UUID
    company_ref: str
    region: str


@dataclass(frozen=True, slots=True)
class StoredExemption:
    exemption: Exemption
    company_ref: str
    updated_at: datetime


def _tax_rate(r: asyncpg.Record) -> TaxRate:
    return TaxRate(
        tax_rate_id=r["tax_rate_id"],
        country=r["country"],
        subdivision=r["subdivision"],
        tax_category=r["tax_category"],
        name=r["name"],
        rate=r["rate"],
        compound=r["compound"],
        apply_order=r["apply_order"],
        valid_from=r["valid_from"],
        valid_to=r["valid_to"],
        withdrawn=r["withdrawn"],
        recorded_at=r["recorded_at"],
    )


def _exchange_rate(r: asyncpg.Record) -> ExchangeRate:
    return ExchangeRate(
        exchange_rate_id=r["exchange_rate_id"],
        currency=r["currency"],
        base_currency=r["base_currency"],
        rate=r["rate"],
        rate_date=r["rate_date"],
        source=r["source"],
        recorded_at=r["recorded_at"],
    )


def _exemption(r: asyncpg.Record) -> StoredExemption:
    return StoredExemption(
        Exemption(
            exemption_id=r["exemption_id"],
            company_id=r["company_id"],
            tax_category=r["tax_category"],
            reason=r["reason"],
            valid_from=r["valid_from"],
            valid_to=r["valid_to"],
        ),
        company_ref=r["company_ref"],
        updated_at=r["updated_at"],
    )


class TaxCurrencyRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model ---------------------------------------------------------------------------
    async def save_catalog(self, events: Sequence[CatalogEvent]) -> None:
        tenants = [(e, e.state) for e in events if isinstance(e.state, TenantState)]
        companies = [(e, e.state) for e in events if isinstance(e.state, CompanyState)]
        if tenants:
            await self._conn.executemany(
                """INSERT INTO tenants VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE
                   SET base_currency = EXCLUDED.base_currency, version = EXCLUDED.version
                   WHERE tenants.version < EXCLUDED.version""",
                [(e.tenant_id, state.base_currency, e.version) for e, state in tenants],
            )
        if companies:
            await self._conn.executemany(
                """INSERT INTO companies VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (tenant_id, company_id) DO UPDATE
                   SET company_ref = EXCLUDED.company_ref, region = EXCLUDED.region, deleted = EXCLUDED.deleted,
                       version = EXCLUDED.version
                   WHERE companies.version < EXCLUDED.version""",
                [(e.tenant_id, e.entity_id, c.company_ref, c.region, e.deleted, e.version) for e, c in companies],
            )

    async def base_currency(self, tenant_id: UUID) -> str | None:
        value: str | None = await self._conn.fetchval(
            "SELECT base_currency FROM tenants WHERE tenant_id = $1", tenant_id
        )
        return value

    async def company(self, company_id: UUID) -> KnownCompany | None:
        row = await self._conn.fetchrow(
            "SELECT company_id, company_ref, region FROM companies WHERE company_id = $1 AND NOT deleted", company_id
        )
        return KnownCompany(row["company_id"], row["company_ref"], row["region"]) if row else None

    # -- tax rates ------------------------------------------------------------------------------------
    async def insert_tax_rate(self, rate: TaxRate, *, recorded_by: str) -> bool:
        """True when inserted; False when a row with that id already exists (rows are never replaced)."""
        inserted = await self._conn.fetchval(
            """INSERT INTO tax_rates VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               ON CONFLICT (tenant_id, tax_rate_id) DO NOTHING RETURNING 1""",
            rate.tax_rate_id,
            rate.country,
            rate.subdivision,
            rate.tax_category,
            rate.name,
            rate.rate,
            rate.compound,
            rate.apply_order,
            rate.valid_from,
            rate.valid_to,
            rate.withdrawn,
            rate.recorded_at,
            recorded_by,
        )
        return bool(inserted)

    async def tax_rate(self, tax_rate_id: UUID) -> TaxRate | None:
        row = await self._conn.fetchrow("SELECT * FROM tax_rates WHERE tax_rate_id = $1", tax_rate_id)
        return _tax_rate(row) if row else None

    async def tax_rates(self, *, country: str | None = None) -> list[TaxRate]:
        rows = await self._conn.fetch(
            """SELECT * FROM tax_rates WHERE ($1::text IS NULL OR country = $1)
               ORDER BY country, subdivision NULLS FIRST, tax_category NULLS FIRST, name, valid_from, recorded_at""",
            country,
        )
        return [_tax_rate(r) for r in rows]

    # -- exemptions -----------------------------------------------------------------------------------
    async def upsert_exemption(self, e: Exemption, *, company_ref: str, at: datetime) -> StoredExemption | None:
        """Save; returns what was there before (None when new). Unchanged content leaves updated_at alone."""
        before = await self._conn.fetchrow(
            "SELECT * FROM exemptions WHERE exemption_id = $1 FOR UPDATE", e.exemption_id
        )
        await self._conn.execute(
            """INSERT INTO exemptions VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (tenant_id, exemption_id) DO UPDATE
               SET company_id = EXCLUDED.company_id, company_ref = EXCLUDED.company_ref,
                   tax_category = EXCLUDED.tax_category, reason = EXCLUDED.reason,
                   valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to, updated_at = EXCLUDED.updated_at""",
            e.exemption_id,
            e.company_id,
            company_ref,
            e.tax_category,
            e.reason,
            e.valid_from,
            e.valid_to,
            at,
        )
        return _exemption(before) if before else None

    async def delete_exemption(self, exemption_id: UUID) -> StoredExemption | None:
        row = await self._conn.fetchrow("DELETE FROM exemptions WHERE exemption_id = $1 RETURNING *", exemption_id)
        return _exemption(row) if row else None

    async def exemption(self, exemption_id: UUID) -> StoredExemption | None:
        row = await self._conn.fetchrow("SELECT * FROM exemptions WHERE exemption_id = $1", exemption_id)
        return _exemption(row) if row else None

    async def exemptions(self, *, company_id: UUID | None = None) -> list[StoredExemption]:
        rows = await self._conn.fetch(
            """SELECT * FROM exemptions WHERE ($1::uuid IS NULL OR company_id = $1)
               ORDER BY company_ref, valid_from, exemption_id""",
            company_id,
        )
        return [_exemption(r) for r in rows]

    # -- currencies -----------------------------------------------------------------------------------
    async def currency_flags(self) -> dict[str, bool]:
        rows = await self._conn.fetch("SELECT code, active FROM currencies")
        return {r["code"]: r["active"] for r in rows}

    async def set_currency(self, code: str, *, active: bool, at: datetime) -> bool | None:
        """Set the flag; returns the flag before (None when never set)."""
        before: bool | None = await self._conn.fetchval(
            "SELECT active FROM currencies WHERE code = $1 FOR UPDATE", code
        )
        await self._conn.execute(
            """INSERT INTO currencies VALUES (app_tenant(), $1, $2, $3) ON CONFLICT (tenant_id, code) DO UPDATE
               SET active = EXCLUDED.active, updated_at = EXCLUDED.updated_at""",
            code,
            active,
            at,
        )
        return before

    # -- exchange rates -------------------------------------------------------------------------------
    async def exchange_rates(
        self, *, base: str, currencies: Sequence[str] | None = None, until: date | None = None
    ) -> list[ExchangeRate]:
        rows = await self._conn.fetch(
            """SELECT * FROM exchange_rates
               WHERE base_currency = $1 AND ($2::text[] IS NULL OR currency = ANY($2::text[]))
                 AND ($3::date IS NULL OR rate_date <= $3)
               ORDER BY currency, rate_date, recorded_at, exchange_rate_id""",
            base,
            list(currencies) if currencies is not None else None,
            until,
        )
        return [_exchange_rate(r) for r in rows]

    async def latest_for_dates(
        self, *, base: str, keys: Sequence[tuple[str, date]]
    ) -> dict[tuple[str, date], ExchangeRate]:
        """The current row (latest recorded) for each (currency, rate_date) asked, where there is one."""
        rows = await self._conn.fetch(
            """SELECT DISTINCT ON (e.currency, e.rate_date) e.*
               FROM exchange_rates e JOIN unnest($2::text[], $3::date[]) AS k(currency, rate_date)
                 ON e.currency = k.currency AND e.rate_date = k.rate_date
               WHERE e.base_currency = $1
               ORDER BY e.currency, e.rate_date, e.recorded_at DESC, e.exchange_rate_id DESC""",
            base,
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["currency"].strip(), r["rate_date"]): _exchange_rate(r) for r in rows}

    async def insert_exchange_rates(self, rows: Sequence[ExchangeRate]) -> None:
        await self._conn.execute(
            """INSERT INTO exchange_rates
               SELECT app_tenant(), * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::date[],
                                                  $6::text[], $7::timestamptz[])""",
            [r.exchange_rate_id for r in rows],
            [r.currency for r in rows],
            [r.base_currency for r in rows],
            [r.rate for r in rows],
            [r.rate_date for r in rows],
            [r.source for r in rows],
            [r.recorded_at for r in rows],
        )

    # -- quotes ---------------------------------------------------------------------------------------
    async def stored_quotes(self, request_ids: Sequence[UUID]) -> dict[UUID, StoredQuote]:
        rows = await self._conn.fetch(
            "SELECT request_id, invoice_id, fingerprint, payload FROM quotes WHERE request_id = ANY($1::uuid[])",
            list(request_ids),
        )
        return {
            r["request_id"]: StoredQuote(r["request_id"], r["invoice_id"], r["fingerprint"], bytes(r["payload"]))
            for r in rows
        }

    async def insert_quotes(self, rows: Sequence[tuple[UUID, UUID, str, str, str, bytes]]) -> None:
        """(request_id, invoice_id, request_type, fingerprint, answer_type, payload) rows, one statement."""
        await self._conn.execute(
            """INSERT INTO quotes (tenant_id, request_id, invoice_id, request_type, fingerprint, answer_type, payload)
               SELECT app_tenant(), * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                                  $6::bytea[])""",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            [r[5] for r in rows],
        )
