"""Tax-currency use cases: answering quote requests (consumer and HTTP), and the operator's changes, each in
one transaction with its audit row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.tax_currency.adapters.repository import StoredExemption, TaxCurrencyRepository
from services.tax_currency.domain.fx import ExchangeRate, conversion
from services.tax_currency.domain.fx import in_force as fx_in_force
from services.tax_currency.domain.rate_import import RowProblem, check_rate, parse_rates_csv
from services.tax_currency.domain.taxes import (
    Exemption,
    LineInput,
    QuoteError,
    Region,
    TaxRate,
    quote_taxes,
)
from shared import audit, principals, topics
from shared.contracts.base import canonical_fingerprint
from shared.contracts.catalog import CatalogEvent
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    ConvertedAmount,
    FailureReason,
    PinnedExchangeRate,
    QuotedLine,
    QuotedTax,
    QuoteFailed,
    RatesChanged,
    TaxQuoted,
    TaxRequested,
    quote_key,
)
from shared.currencies import CURRENCIES
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Reject, Rejections
from shared.messaging.envelope import Parsed

log = structlog.get_logger(__name__)

Request = ConversionRequested | TaxRequested
Answer = ConversionQuoted | TaxQuoted | QuoteFailed
ANSWER_NAMESPACE = uuid.UUID("6f1d3f0e-2b8a-4c57-9d0e-5a7c1b2e3f40")


class Refused(Exception):
    """An operator change that cannot be made: (field, message) pairs; ``conflict`` for 409."""

    def __init__(self, problems: list[tuple[str, str]], *, conflict: bool = False) -> None:
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems
        self.conflict = conflict


class NotFound(Exception):
    pass


class CsvRefused(Exception):
    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


# -- catalog read model ---------------------------------------------------------------------------------


async def project_catalog(uow: UnitOfWork, items: Sequence[Parsed[CatalogEvent]]) -> Rejections[CatalogEvent]:
    """Keep each tenant's base currency and its clients (only those entity types matter here)."""
    await principals.remember(uow.conn, (item.body for item in items))  # whose tokens still stand
    await TaxCurrencyRepository(uow.conn).save_catalog([i.body for i in items])
    return []


# -- answering -------------------------------------------------------------------------------------------


def answer_message_id(tenant_id: UUID, request_id: UUID) -> UUID:
    """One message id per request id: a re-published answer is the same message to the asker's inbox."""
    return uuid.uuid5(ANSWER_NAMESPACE, f"{tenant_id}:{request_id}")


async def answer_requests(uow: UnitOfWork, items: Sequence[Parsed[Request]]) -> Rejections[Request]:
    """Answer each request once: a request id already answered gets its stored answer re-published byte for
    byte; a new one is computed against the rows in force, stored and published, in this transaction."""
    tenant_id = uow.require_tenant()
    repo = TaxCurrencyRepository(uow.conn)
    stored = await repo.stored_quotes([i.body.request_id for i in items])
    fingerprints = {rid: q.fingerprint for rid, q in stored.items()}
    payloads = {rid: q.payload for rid, q in stored.items()}
    new: list[tuple[UUID, UUID, str, str, str, bytes]] = []
    refused: Rejections[Request] = []
    for item in items:
        request = item.body
        fingerprint = canonical_fingerprint(request)
        if request.request_id in fingerprints:
            if fingerprints[request.request_id] != fingerprint:
                reason = f"request_id {request.request_id} was already answered for a different request"
                refused.append(
                    (item, Reject(reason, error_class="request_id_reused", field="request_id", tenant_id=tenant_id))
                )
                continue
            log.info("quote_republished", request_id=str(request.request_id))
        else:
            answer = await compute_answer(repo, tenant_id, request)
            payload = answer.model_dump_json().encode()
            fingerprints[request.request_id], payloads[request.request_id] = fingerprint, payload
            new.append((request.request_id, request.invoice_id, request.type, fingerprint, answer.type, payload))
        uow.publish(
            topic=topics.TAX_RESULTS.name,
            key=quote_key(tenant_id, request.invoice_id),
            message=payloads[request.request_id],
            message_id=answer_message_id(tenant_id, request.request_id),
        )
    if new:
        await repo.insert_quotes(new)
    return refused


async def compute_answer(repo: TaxCurrencyRepository, tenant_id: UUID, request: Request) -> Answer:
    try:
        if isinstance(request, TaxRequested):
            return await _tax(repo, tenant_id, request)
        return await _conversion(repo, tenant_id, request)
    except QuoteError as exc:
        return QuoteFailed(
            request_id=request.request_id,
            tenant_id=tenant_id,
            invoice_id=request.invoice_id,
            request_type=request.type,
            reason=exc.reason,
            message=exc.message,
        )


async def _base_currency(repo: TaxCurrencyRepository, tenant_id: UUID) -> str:
    base = await repo.base_currency(tenant_id)
    if base is None:
        raise QuoteError(
            FailureReason.UNKNOWN_TENANT, f"tenant {tenant_id} is not in tax-currency's catalog view (yet)"
        )
    return base


async def _require_active(repo: TaxCurrencyRepository, base: str, *codes: tuple[str, str]) -> None:
    flags = await repo.currency_flags()
    for code, field in codes:
        if code not in CURRENCIES:
            raise QuoteError(FailureReason.UNKNOWN_CURRENCY, f"currency {code!r} is not an ISO 4217 code", field=field)
        if code != base and not flags.get(code, False):
            raise QuoteError(
                FailureReason.INACTIVE_CURRENCY,
                f"currency {code} is not active for this tenant (activate it: PUT /v1/currencies/{code})",
                field=field,
            )


async def _tax(repo: TaxCurrencyRepository, tenant_id: UUID, request: TaxRequested) -> TaxQuoted:
    base = await _base_currency(repo, tenant_id)
    await _require_active(repo, base, (request.currency, "currency"))
    region = Region.parse(request.region)
    exemptions = [e.exemption for e in await repo.exemptions(company_id=request.company_id)]
    result = quote_taxes(
        lines=[LineInput(line.line_id, line.amount, line.tax_category) for line in request.lines],
        rates=await repo.tax_rates(country=region.country),
        exemptions=exemptions,
        region=region,
        company_id=request.company_id,
        day=request.invoice_date,
        code=request.currency,
        inclusive=request.tax_inclusive,
    )
    return TaxQuoted(
        request_id=request.request_id,
        tenant_id=tenant_id,
        invoice_id=request.invoice_id,
        currency=request.currency,
        tax_inclusive=request.tax_inclusive,
        lines=[
            QuotedLine(
                line_id=line.line_id,
                net_amount=line.net_amount,
                taxes=[
                    QuotedTax(
                        name=t.name,
                        rate=t.rate,
                        amount=t.amount,
                        compound=t.compound,
                        exemption_reason=t.exemption_reason,
                        tax_rate_id=t.tax_rate_id,
                    )
                    for t in line.taxes
                ],
                tax_amount=line.tax_amount,
                total=line.total,
            )
            for line in result.lines
        ],
        tax_total=result.tax_total,
    )


async def _conversion(repo: TaxCurrencyRepository, tenant_id: UUID, request: ConversionRequested) -> ConversionQuoted:
    base = await _base_currency(repo, tenant_id)
    await _require_active(repo, base, (request.from_currency, "from_currency"), (request.to_currency, "to_currency"))
    codes = [c for c in {request.from_currency, request.to_currency} if c != base]
    rows = await repo.exchange_rates(base=base, currencies=codes, until=request.on) if codes else []
    quoted = conversion(
        from_currency=request.from_currency, to_currency=request.to_currency, base=base, rows=rows, day=request.on
    )
    return ConversionQuoted(
        request_id=request.request_id,
        tenant_id=tenant_id,
        invoice_id=request.invoice_id,
        from_currency=request.from_currency,
        to_currency=request.to_currency,
        on=request.on,
        rate=quoted.rate,
        rate_date=quoted.rate_date,
        exchange_rates=[_pinned(r) for r in quoted.rows],
        amounts=[
            ConvertedAmount(line_id=a.line_id, amount=a.amount, converted=quoted.apply(a.amount))
            for a in request.amounts
        ],
    )


def _pinned(row: ExchangeRate) -> PinnedExchangeRate:
    return PinnedExchangeRate(
        exchange_rate_id=row.exchange_rate_id,
        currency=row.currency,
        base_currency=row.base_currency,
        rate=row.rate,
        rate_date=row.rate_date,
        source=row.source,
    )


async def preview(pool: asyncpg.Pool, *, tenant_id: UUID, request: Request) -> Answer:
    """The same answer as over topics, computed now and neither stored nor published (operators, previews)."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await compute_answer(TaxCurrencyRepository(uow.conn), tenant_id, request)


# -- tax rates ------------------------------------------------------------------------------------------


def rate_document(rate: TaxRate) -> dict[str, Any]:
    region = Region(rate.country, rate.subdivision)
    return {
        "tax_rate_id": str(rate.tax_rate_id),
        "region": str(region),
        "tax_category": rate.tax_category,
        "name": rate.name,
        "rate": f"{rate.rate:f}",
        "compound": rate.compound,
        "apply_order": rate.apply_order,
        "valid_from": rate.valid_from.isoformat(),
        "valid_to": rate.valid_to.isoformat() if rate.valid_to else None,
        "withdrawn": rate.withdrawn,
        "recorded_at": rate.recorded_at.isoformat(),
    }


_RATE_CONTENT = (
    "region",
    "tax_category",
    "name",
    "rate",
    "compound",
    "apply_order",
    "valid_from",
    "valid_to",
    "withdrawn",
)


def announce_rates(uow: UnitOfWork, *, tenant_id: UUID, change: str, about: str, detail: str, at: datetime) -> None:
    """``rates.changed`` on tax.results.v1 (same transaction as the rows): invoicing retries drafts it held
    for a missing rate. ``about`` names the rows, so the same change announces the same event id."""
    event = RatesChanged.model_validate(
        {
            "event_id": uuid.uuid5(tenant_id, f"rates.changed:{change}:{about}"),
            "tenant_id": tenant_id,
            "change": change,
            "detail": detail,
            "occurred_at": at,
        }
    )
    uow.publish(topic=topics.TAX_RESULTS.name, key=event.key(), message=event, message_id=event.event_id)


async def add_tax_rate(pool: asyncpg.Pool, *, tenant_id: UUID, rate: TaxRate, actor: str) -> tuple[TaxRate, bool]:
    """Append a row; the same id again with the same content changes nothing (a retry), with other content
    it is refused: rows are never edited, a change in law is a new row."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        if await repo.insert_tax_rate(rate, recorded_by=actor):
            await audit.record(
                uow,
                actor=actor,
                action="created",
                entity_type="tax_rate",
                entity_id=rate.tax_rate_id,
                at=rate.recorded_at,
                after=rate_document(rate),
            )
            announce_rates(
                uow,
                tenant_id=tenant_id,
                change="tax_rate",
                about=str(rate.tax_rate_id),
                detail=f"{rate.name} {rate.rate} % in {rate.country} {rate.subdivision or ''} from {rate.valid_from}",
                at=rate.recorded_at,
            )
            return rate, True
        existing = await repo.tax_rate(rate.tax_rate_id)
    assert existing is not None
    mine, theirs = rate_document(rate), rate_document(existing)
    if any(Decimal(mine[k]) != Decimal(theirs[k]) if k == "rate" else mine[k] != theirs[k] for k in _RATE_CONTENT):
        raise Refused(
            [
                (
                    "tax_rate_id",
                    f"tax rate {rate.tax_rate_id} exists with other content; rows are never edited: "
                    "add a new row (new id) from the date the change takes effect",
                )
            ],
            conflict=True,
        )
    return existing, False


async def tax_rates(pool: asyncpg.Pool, *, tenant_id: UUID, region: Region | None) -> list[TaxRate]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        rows = await TaxCurrencyRepository(uow.conn).tax_rates(country=region.country if region else None)
    if region is None:
        return rows
    return [r for r in rows if r.subdivision is None or r.subdivision == region.subdivision]


async def tax_rate(pool: asyncpg.Pool, *, tenant_id: UUID, tax_rate_id: UUID) -> TaxRate:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        found = await TaxCurrencyRepository(uow.conn).tax_rate(tax_rate_id)
    if found is None:
        raise NotFound(f"no tax rate {tax_rate_id}")
    return found


# -- exemptions -----------------------------------------------------------------------------------------


def exemption_document(e: Exemption, company_ref: str) -> dict[str, Any]:
    return {
        "exemption_id": str(e.exemption_id),
        "company_id": str(e.company_id),
        "company_ref": company_ref,
        "tax_category": e.tax_category,
        "reason": e.reason,
        "valid_from": e.valid_from.isoformat(),
        "valid_to": e.valid_to.isoformat() if e.valid_to else None,
    }


async def save_exemption(
    pool: asyncpg.Pool, *, tenant_id: UUID, exemption: Exemption, actor: str, at: datetime
) -> tuple[dict[str, Any], bool]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        company = await repo.company(exemption.company_id)
        if company is None:
            raise Refused([("company_id", f"no client {exemption.company_id} in this tenant's catalog")])
        after = exemption_document(exemption, company.company_ref)
        before = await repo.upsert_exemption(exemption, company_ref=company.company_ref, at=at)
        previous = exemption_document(before.exemption, before.company_ref) if before else None
        if previous == after:
            return after, False
        await audit.record(
            uow,
            actor=actor,
            action="created" if before is None else "updated",
            entity_type="exemption",
            entity_id=exemption.exemption_id,
            at=at,
            before=previous,
            after=after,
        )
        return after, True


async def remove_exemption(
    pool: asyncpg.Pool, *, tenant_id: UUID, exemption_id: UUID, actor: str, at: datetime
) -> dict[str, Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        before = await TaxCurrencyRepository(uow.conn).delete_exemption(exemption_id)
        if before is None:
            raise NotFound(f"no exemption {exemption_id}")
        document = exemption_document(before.exemption, before.company_ref)
        await audit.record(
            uow, actor=actor, action="deleted", entity_type="exemption", entity_id=exemption_id, at=at, before=document
        )
        return document


async def exemptions(pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID | None) -> list[StoredExemption]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await TaxCurrencyRepository(uow.conn).exemptions(company_id=company_id)


async def exemption(pool: asyncpg.Pool, *, tenant_id: UUID, exemption_id: UUID) -> StoredExemption:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        found = await TaxCurrencyRepository(uow.conn).exemption(exemption_id)
    if found is None:
        raise NotFound(f"no exemption {exemption_id}")
    return found


# -- currencies -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrencyView:
    code: str
    name: str
    minor_units: int
    active: bool
    base: bool


async def currencies(pool: asyncpg.Pool, *, tenant_id: UUID) -> list[CurrencyView]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        base, flags = await repo.base_currency(tenant_id), await repo.currency_flags()
    return [
        CurrencyView(c.code, c.name, c.minor_units, c.code == base or flags.get(c.code, False), c.code == base)
        for c in CURRENCIES.values()
    ]


async def set_currency_active(
    pool: asyncpg.Pool, *, tenant_id: UUID, code: str, active: bool, actor: str, at: datetime
) -> CurrencyView:
    if code not in CURRENCIES:
        raise NotFound(f"{code!r} is not an ISO 4217 currency code")
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        base = await repo.base_currency(tenant_id)
        if code == base and not active:
            raise Refused([("active", f"{code} is the tenant's base currency and is always active")])
        before = await repo.set_currency(code, active=active, at=at)
        if before is not active:
            await audit.record(
                uow,
                actor=actor,
                action="activated" if active else "deactivated",
                entity_type="currency",
                entity_id=code,
                at=at,
                before=None if before is None else {"code": code, "active": before},
                after={"code": code, "active": active},
            )
            if active:
                detail = f"{code} activated"
                announce_rates(uow, tenant_id=tenant_id, change="currency", about=f"{code}:{at}", detail=detail, at=at)
    c = CURRENCIES[code]
    return CurrencyView(c.code, c.name, c.minor_units, active or code == base, code == base)


# -- exchange rates -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatesSaved:
    inserted: list[ExchangeRate]
    corrected: list[ExchangeRate]
    unchanged: list[ExchangeRate]


async def _require_base(repo: TaxCurrencyRepository, tenant_id: UUID) -> str:
    base = await repo.base_currency(tenant_id)
    if base is None:
        raise Refused([("tenant", f"tenant {tenant_id} is not in tax-currency's catalog view yet")], conflict=True)
    return base


async def _save_rates(
    uow: UnitOfWork, repo: TaxCurrencyRepository, base: str, wanted: list[tuple[str, date, Decimal, str]], at: datetime
) -> RatesSaved:
    """Idempotent: a (currency, date) whose current row already says the same rate and source is unchanged;
    one with another rate or source gets a correction row (recorded now, so it wins for new quotes)."""
    current = await repo.latest_for_dates(base=base, keys=[(c, d) for c, d, _, _ in wanted])
    saved = RatesSaved([], [], [])
    fresh: list[ExchangeRate] = []
    for code, day, rate, source in wanted:
        existing = current.get((code, day))
        if existing is not None and existing.rate == rate and existing.source == source:
            saved.unchanged.append(existing)
            continue
        row = ExchangeRate(uuid.uuid4(), code, base, rate, day, source, at)
        fresh.append(row)
        (saved.inserted if existing is None else saved.corrected).append(row)
    if fresh:
        await repo.insert_exchange_rates(fresh)
    return saved


def exchange_rate_document(row: ExchangeRate) -> dict[str, Any]:
    return {
        "exchange_rate_id": str(row.exchange_rate_id),
        "currency": row.currency,
        "base_currency": row.base_currency,
        "rate": f"{row.rate:f}",
        "rate_date": row.rate_date.isoformat(),
        "source": row.source,
        "recorded_at": row.recorded_at.isoformat(),
    }


async def set_exchange_rate(
    pool: asyncpg.Pool,
    *,
    tenant_id: UUID,
    code: str,
    rate_date: date,
    rate: str,
    source: str,
    actor: str,
    at: datetime,
) -> tuple[str, ExchangeRate]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        base = await _require_base(repo, tenant_id)
        value, problems = check_rate(rate, code=code, base=base)
        if problems or value is None:
            raise Refused(problems)
        saved = await _save_rates(uow, repo, base, [(code, rate_date, value, source)], at)
        if saved.unchanged:
            return "unchanged", saved.unchanged[0]
        outcome, row = ("inserted", saved.inserted[0]) if saved.inserted else ("corrected", saved.corrected[0])
        await audit.record(
            uow,
            actor=actor,
            action=outcome,
            entity_type="exchange_rate",
            entity_id=row.exchange_rate_id,
            at=at,
            after=exchange_rate_document(row),
        )
        detail = f"{code} {rate_date} {outcome}"
        announce_rates(
            uow, tenant_id=tenant_id, change="exchange_rate", about=str(row.exchange_rate_id), detail=detail, at=at
        )
        return outcome, row


async def import_exchange_rates(
    pool: asyncpg.Pool, *, tenant_id: UUID, text: str, actor: str, at: datetime
) -> RatesSaved:
    """All or nothing: a file with any bad row is refused whole, every problem named by row and field."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        base = await _require_base(repo, tenant_id)
        rows, problems = parse_rates_csv(text, base=base)
        if problems:
            raise CsvRefused(problems)
        saved = await _save_rates(uow, repo, base, [(r.currency, r.rate_date, r.rate, r.source) for r in rows], at)
        if saved.inserted or saved.corrected:
            await audit.record(
                uow,
                actor=actor,
                action="imported",
                entity_type="exchange_rates",
                entity_id=f"import:{at.isoformat()}",
                at=at,
                after={
                    "inserted": [exchange_rate_document(r) for r in saved.inserted],
                    "corrected": [exchange_rate_document(r) for r in saved.corrected],
                    "unchanged": len(saved.unchanged),
                },
            )
            fresh = saved.inserted + saved.corrected
            announce_rates(
                uow,
                tenant_id=tenant_id,
                change="exchange_rate",
                about=str(fresh[0].exchange_rate_id),
                detail=f"{len(fresh)} exchange rates imported",
                at=at,
            )
        return saved


async def exchange_rates(
    pool: asyncpg.Pool, *, tenant_id: UUID, code: str | None, on: date | None
) -> tuple[str | None, list[ExchangeRate]]:
    """History (every row, corrections included), or with ``on`` only the rows in force on that date."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = TaxCurrencyRepository(uow.conn)
        base = await repo.base_currency(tenant_id)
        if base is None:
            return None, []
        rows = await repo.exchange_rates(base=base, currencies=[code] if code else None, until=on)
    if on is None:
        return base, rows
    in_force = (fx_in_force(rows, currency=c, base=base, day=on) for c in sorted({r.currency for r in rows}))
    return base, [row for row in in_force if row is not None]
