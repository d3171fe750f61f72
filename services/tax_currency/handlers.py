"""Tax-currency's HTTP routes and message consumers: translate, call a use case; no SQL, no arithmetic.

The tenant always comes from the caller's bearer token. Reading needs ``catalog:read``; changing rates,
exemptions, currencies and exchange rates needs ``tax:manage`` (admins and billing managers), and every
change is audited in its own transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, model_validator

from services.tax_currency import use_cases
from services.tax_currency.domain.fx import ExchangeRate
from services.tax_currency.domain.taxes import Exemption, Region, TaxRate
from shared.auth import Permission, Principal, requires
from shared.contracts.base import CurrencyCode, DecimalStr, NonEmptyStr
from shared.contracts.catalog import CatalogEvent
from shared.contracts.tax import (
    AmountToConvert,
    ConversionQuoted,
    ConversionRequested,
    LineToTax,
    QuoteFailed,
    TaxQuoted,
    TaxRequested,
)
from shared.messaging.consumer import BatchConsumer, Reject
from shared.messaging.decoding import Undecodable, loads
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

Reader = Annotated[Principal, Depends(requires(Permission.CATALOG_READ))]
Manager = Annotated[Principal, Depends(requires(Permission.TAX_MANAGE))]
REGION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
NIL = UUID(int=0)


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge records when a change arrived (audit metadata and recorded_at); domain code never reads the clock.
    return datetime.now(UTC)


def _refusal(exc: use_cases.Refused) -> HTTPException:
    return HTTPException(
        status_code=409 if exc.conflict else 422,
        detail=[{"loc": ["body", *field.split(".")], "msg": message} for field, message in exc.problems],
    )


# -- models ---------------------------------------------------------------------------------------------


class TaxRateInput(BaseModel):
    tax_rate_id: UUID = Field(description="Chosen by the caller; the same id again is a safe retry")
    region: str = Field(
        pattern=REGION_PATTERN, description="Jurisdiction, ISO 3166: a country or a subdivision", examples=["US-NY"]
    )
    tax_category: str | None = Field(
        default=None, description="Only lines of this tax category; null for every category", examples=[None]
    )
    name: NonEmptyStr = Field(description="Tax name as printed; rows of one series share it", examples=["VAT"])
    rate: DecimalStr = Field(description="Percent, 0 to 100", examples=["20"])
    compound: bool = Field(default=False, description="Charged on the net plus the taxes before it")
    apply_order: int = Field(default=0, ge=0, description="Taxes apply in ascending order, then by name")
    valid_from: date = Field(description="First day in force", examples=["2026-01-01"])
    valid_to: date | None = Field(default=None, description="First day no longer in force (exclusive), if known")
    withdrawn: bool = Field(
        default=False, description="From valid_from this tax no longer applies here (rate must be 0)"
    )

    @model_validator(mode="after")
    def _coherent(self) -> TaxRateInput:
        if not 0 <= self.rate <= 100:
            raise ValueError("rate must be a percentage from 0 to 100")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        if self.withdrawn and self.rate != 0:
            raise ValueError("a withdrawn row ends the tax: its rate must be 0")
        return self


class TaxRateOutput(TaxRateInput):
    recorded_at: datetime = Field(description="When the row was added")


class ExemptionInput(BaseModel):
    exemption_id: UUID = Field(description="Chosen by the caller")
    company_id: UUID = Field(description="The client (must exist in the catalog)")
    tax_category: str | None = Field(
        default=None, description="Only this tax category; null exempts the client from every tax", examples=[None]
    )
    reason: NonEmptyStr = Field(description="Printed on each exempt line", examples=["NGO exemption certificate 2291"])
    valid_from: date = Field(description="First day exempt", examples=["2026-01-01"])
    valid_to: date | None = Field(default=None, description="First day no longer exempt (exclusive)")

    @model_validator(mode="after")
    def _dates(self) -> ExemptionInput:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class ExemptionOutput(ExemptionInput):
    company_ref: str = Field(description="The client's reference, for display")


class CurrencyOutput(BaseModel):
    code: str = Field(description="ISO 4217 code")
    name: str = Field(description="ISO 4217 name")
    minor_units: int = Field(description="Decimal places of an amount")
    active: bool = Field(description="Usable on invoices of this tenant")
    base: bool = Field(description="The tenant's base currency (exchange rates are against it)")


class CurrencyInput(BaseModel):
    active: bool = Field(description="Whether invoices of this tenant may use the currency")


class ExchangeRateInput(BaseModel):
    rate: DecimalStr = Field(description="Units of the currency per 1 unit of the base currency", examples=["1.2650"])
    source: NonEmptyStr = Field(description="Where the rate comes from", examples=["ECB"])


class ExchangeRateOutput(BaseModel):
    exchange_rate_id: UUID = Field(description="The row (quotes pin it)")
    currency: str = Field(description="ISO 4217 code")
    base_currency: str = Field(description="The tenant's base currency")
    rate: DecimalStr = Field(description="Units of currency per 1 base")
    rate_date: date = Field(description="Date the rate is for")
    source: str = Field(description="Where it came from")
    recorded_at: datetime = Field(description="When it was recorded (a later correction wins)")


class ExchangeRateSaved(BaseModel):
    outcome: str = Field(description="inserted, corrected (a new row for a date that had one) or unchanged")
    exchange_rate: ExchangeRateOutput


class ImportOutcome(BaseModel):
    inserted: int = Field(description="Rates for a date that had none")
    corrected: int = Field(description="New rows for a date whose rate or source differed")
    unchanged: int = Field(description="Rows that said what is already recorded")


class TaxQuoteInput(BaseModel):
    company_id: UUID | None = Field(default=None, description="The client, to apply its exemptions")
    region: str = Field(pattern=REGION_PATTERN, description="The client's region, ISO 3166", examples=["GB"])
    invoice_date: date = Field(description="Rates in force on this date apply", examples=["2026-02-01"])
    currency: CurrencyCode = Field(description="Currency of the amounts", examples=["GBP"])
    tax_inclusive: bool = Field(default=False, description="Amounts are gross and are split")
    lines: list[LineToTax] = Field(min_length=1, description="Lines: rounded net (or gross) and tax category")


class ConversionQuoteInput(BaseModel):
    from_currency: CurrencyCode = Field(examples=["USD"], description="Converted from")
    to_currency: CurrencyCode = Field(examples=["GBP"], description="Converted to")
    on: date = Field(description="The rate in force on this date applies", examples=["2026-02-01"])
    amounts: list[AmountToConvert] = Field(min_length=1, description="Amounts at full precision")


def _rate_output(rate: TaxRate) -> TaxRateOutput:
    return TaxRateOutput.model_validate(use_cases.rate_document(rate))


def _exchange_output(row: ExchangeRate) -> ExchangeRateOutput:
    return ExchangeRateOutput.model_validate(use_cases.exchange_rate_document(row))


def _currency_output(v: use_cases.CurrencyView) -> CurrencyOutput:
    return CurrencyOutput(code=v.code, name=v.name, minor_units=v.minor_units, active=v.active, base=v.base)


def _region(text: str, field: str) -> Region:
    try:
        return Region.parse(text)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=[{"loc": field.split("."), "msg": str(exc)}]) from exc


router = APIRouter(prefix="/v1")


# -- tax rates ------------------------------------------------------------------------------------------


@router.put("/tax-rates/{tax_rate_id}", summary="Add a tax rate row (append-only)", tags=["tax rates"])
async def put_tax_rate(tax_rate_id: UUID, body: TaxRateInput, request: Request, who: Manager) -> TaxRateOutput:
    if body.tax_rate_id != tax_rate_id:
        raise HTTPException(422, detail=[{"loc": ["body", "tax_rate_id"], "msg": "must match the id in the path"}])
    region = _region(body.region, "body.region")
    rate = TaxRate(
        tax_rate_id=tax_rate_id,
        country=region.country,
        subdivision=region.subdivision,
        tax_category=body.tax_category,
        name=body.name,
        rate=body.rate,
        compound=body.compound,
        apply_order=body.apply_order,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        withdrawn=body.withdrawn,
        recorded_at=_now(),
    )
    try:
        saved, _ = await use_cases.add_tax_rate(_pool(request), tenant_id=who.tenant_id, rate=rate, actor=who.actor)
    except use_cases.Refused as exc:
        raise _refusal(exc) from exc
    return _rate_output(saved)


@router.get("/tax-rates", summary="Tax rate rows, all history; optionally those a region sees", tags=["tax rates"])
async def list_tax_rates(
    request: Request,
    who: Reader,
    region: Annotated[str | None, Query(description="Only rows for this region (country and its subdivision)")] = None,
) -> list[TaxRateOutput]:
    parsed = _region(region, "query.region") if region else None
    rows = await use_cases.tax_rates(_pool(request), tenant_id=who.tenant_id, region=parsed)
    return [_rate_output(r) for r in rows]


@router.get("/tax-rates/{tax_rate_id}", summary="One tax rate row", tags=["tax rates"])
async def get_tax_rate(tax_rate_id: UUID, request: Request, who: Reader) -> TaxRateOutput:
    try:
        return _rate_output(await use_cases.tax_rate(_pool(request), tenant_id=who.tenant_id, tax_rate_id=tax_rate_id))
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc


# -- exemptions -----------------------------------------------------------------------------------------


@router.put("/exemptions/{exemption_id}", summary="Create or change a client's exemption", tags=["exemptions"])
async def put_exemption(exemption_id: UUID, body: ExemptionInput, request: Request, who: Manager) -> ExemptionOutput:
    if body.exemption_id != exemption_id:
        raise HTTPException(422, detail=[{"loc": ["body", "exemption_id"], "msg": "must match the id in the path"}])
    exemption = Exemption(
        exemption_id=exemption_id,
        company_id=body.company_id,
        tax_category=body.tax_category,
        reason=body.reason,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
    )
    try:
        document, _ = await use_cases.save_exemption(
            _pool(request), tenant_id=who.tenant_id, exemption=exemption, actor=who.actor, at=_now()
        )
    except use_cases.Refused as exc:
        raise _refusal(exc) from exc
    return ExemptionOutput.model_validate(document)


@router.delete("/exemptions/{exemption_id}", summary="Remove an exemption", tags=["exemptions"])
async def delete_exemption(exemption_id: UUID, request: Request, who: Manager) -> ExemptionOutput:
    try:
        document = await use_cases.remove_exemption(
            _pool(request), tenant_id=who.tenant_id, exemption_id=exemption_id, actor=who.actor, at=_now()
        )
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return ExemptionOutput.model_validate(document)


@router.get("/exemptions", summary="Exemptions, optionally of one client", tags=["exemptions"])
async def list_exemptions(
    request: Request, who: Reader, company_id: Annotated[UUID | None, Query(description="Only this client's")] = None
) -> list[ExemptionOutput]:
    found = await use_cases.exemptions(_pool(request), tenant_id=who.tenant_id, company_id=company_id)
    return [ExemptionOutput.model_validate(use_cases.exemption_document(e.exemption, e.company_ref)) for e in found]


@router.get("/exemptions/{exemption_id}", summary="One exemption", tags=["exemptions"])
async def get_exemption(exemption_id: UUID, request: Request, who: Reader) -> ExemptionOutput:
    try:
        e = await use_cases.exemption(_pool(request), tenant_id=who.tenant_id, exemption_id=exemption_id)
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return ExemptionOutput.model_validate(use_cases.exemption_document(e.exemption, e.company_ref))


# -- currencies -----------------------------------------------------------------------------------------


@router.get("/currencies", summary="The ISO 4217 list with this tenant's active flags", tags=["currencies"])
async def list_currencies(request: Request, who: Reader) -> list[CurrencyOutput]:
    views = await use_cases.currencies(_pool(request), tenant_id=who.tenant_id)
    return [
        CurrencyOutput(code=v.code, name=v.name, minor_units=v.minor_units, active=v.active, base=v.base) for v in views
    ]


@router.put("/currencies/{code}", summary="Activate or deactivate a currency for this tenant", tags=["currencies"])
async def put_currency(code: str, body: CurrencyInput, request: Request, who: Manager) -> CurrencyOutput:
    try:
        v = await use_cases.set_currency_active(
            _pool(request), tenant_id=who.tenant_id, code=code, active=body.active, actor=who.actor, at=_now()
        )
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except use_cases.Refused as exc:
        raise _refusal(exc) from exc
    return _currency_output(v)


# -- exchange rates -------------------------------------------------------------------------------------


@router.put(
    "/exchange-rates/{currency}/{rate_date}",
    summary="Set a currency's rate against the base for a date (a differing rate adds a correction row)",
    tags=["exchange rates"],
)
async def put_exchange_rate(
    currency: str, rate_date: date, body: ExchangeRateInput, request: Request, who: Manager
) -> ExchangeRateSaved:
    try:
        outcome, row = await use_cases.set_exchange_rate(
            _pool(request),
            tenant_id=who.tenant_id,
            code=currency,
            rate_date=rate_date,
            rate=f"{body.rate:f}",
            source=body.source,
            actor=who.actor,
            at=_now(),
        )
    except use_cases.Refused as exc:
        raise _refusal(exc) from exc
    return ExchangeRateSaved(outcome=outcome, exchange_rate=_exchange_output(row))


@router.post(
    "/exchange-rates/import",
    summary="Import rates from CSV (rate_date,currency,rate,source): all rows or none, idempotent",
    tags=["exchange rates"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "example": "rate_date,currency,rate,source\n"}}},
        }
    },
)
async def import_exchange_rates(request: Request, who: Manager) -> ImportOutcome:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "text/csv":
        raise HTTPException(415, detail=f"send the file as text/csv, not {content_type or 'no content type'}")
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": f"the file is not UTF-8: {exc}"}]) from exc
    try:
        saved = await use_cases.import_exchange_rates(
            _pool(request), tenant_id=who.tenant_id, text=text, actor=who.actor, at=_now()
        )
    except use_cases.CsvRefused as exc:
        detail = [{"loc": ["body", p.row, p.field], "msg": p.message} for p in exc.problems]
        raise HTTPException(422, detail=detail) from exc
    except use_cases.Refused as exc:
        raise _refusal(exc) from exc
    return ImportOutcome(inserted=len(saved.inserted), corrected=len(saved.corrected), unchanged=len(saved.unchanged))


@router.get(
    "/exchange-rates", summary="Exchange-rate history, or the rates in force on a date", tags=["exchange rates"]
)
async def list_exchange_rates(
    request: Request,
    who: Reader,
    currency: Annotated[str | None, Query(description="Only this currency")] = None,
    on: Annotated[date | None, Query(description="Only the row of each currency in force on this date")] = None,
) -> list[ExchangeRateOutput]:
    _, rows = await use_cases.exchange_rates(_pool(request), tenant_id=who.tenant_id, code=currency, on=on)
    return [_exchange_output(r) for r in rows]


# -- quotes (previews: computed, neither stored nor published) ------------------------------------------


def _answered(answer: use_cases.Answer) -> dict[str, Any]:
    if isinstance(answer, QuoteFailed):
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": answer.message, "type": answer.reason.value}])
    result: dict[str, Any] = answer.model_dump(mode="json")
    return result


@router.post("/quotes/tax", summary="Taxes of draft lines, as invoicing would get them", tags=["quotes"])
async def quote_tax(body: TaxQuoteInput, request: Request, who: Reader) -> TaxQuoted:
    asked = TaxRequested(
        request_id=uuid.uuid4(),
        tenant_id=who.tenant_id,
        invoice_id=NIL,
        company_id=body.company_id or NIL,
        company_ref="",
        region=body.region,
        invoice_date=body.invoice_date,
        currency=body.currency,
        tax_inclusive=body.tax_inclusive,
        lines=body.lines,
    )
    return TaxQuoted.model_validate(
        _answered(await use_cases.preview(_pool(request), tenant_id=who.tenant_id, request=asked))
    )


@router.post("/quotes/conversion", summary="A conversion, as invoicing would get it", tags=["quotes"])
async def quote_conversion(body: ConversionQuoteInput, request: Request, who: Reader) -> ConversionQuoted:
    asked = ConversionRequested(
        request_id=uuid.uuid4(),
        tenant_id=who.tenant_id,
        invoice_id=NIL,
        from_currency=body.from_currency,
        to_currency=body.to_currency,
        on=body.on,
        amounts=body.amounts,
    )
    return ConversionQuoted.model_validate(
        _answered(await use_cases.preview(_pool(request), tenant_id=who.tenant_id, request=asked))
    )


# -- consumers ------------------------------------------------------------------------------------------

_REQUEST_TYPES: dict[str, type[ConversionRequested] | type[TaxRequested]] = {
    "conversion.requested": ConversionRequested,
    "tax.requested": TaxRequested,
}


def parse_request(env: Envelope) -> tuple[UUID, use_cases.Request]:
    """A tax.requests.v1 record as its contract, chosen by ``type``; anything else is a Reject (dead letter)."""
    try:
        raw = loads(env.value)
    except Undecodable as exc:
        raise Reject(exc.reason, error_class=exc.code) from exc
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in _REQUEST_TYPES:
        tenant: UUID | None = None
        if isinstance(raw, dict):
            try:
                tenant = UUID(str(raw.get("tenant_id")))
            except ValueError:
                tenant = None
        expected = " or ".join(_REQUEST_TYPES)
        raise Reject(
            f"type: must be {expected}, got {kind!r}", error_class="validation_error", field="type", tenant_id=tenant
        )
    return parse_contract(env, _REQUEST_TYPES[kind])


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


REQUESTS = BatchConsumer(
    service="tax_currency", consumer="requests", parse=parse_request, apply=use_cases.answer_requests
)
CATALOG = BatchConsumer(
    service="tax_currency", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog
)
