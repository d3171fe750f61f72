"""Tax and conversion quotes for draft invoices (``tax.requests.v1`` → ``tax.results.v1``).

Request / reply over topics, both keyed ``"<tenant_id>:<invoice_id>"`` (`quote_key`), discriminated by
``type``. Invoicing asks; tax-currency answers exactly once per ``request_id``:

* ``conversion.requested`` → ``conversion.quoted``: amounts at full precision converted with the rate in
  force on the invoice date, naming the exchange-rate row(s) used.
* ``tax.requested`` → ``tax.quoted``: each line's taxes on its rounded net (or split out of its gross),
  rounded half-up per line, naming the tax-rate row of every tax.
* either → ``quote.failed``: a machine ``reason`` and a message naming what is missing; invoicing holds
  the invoice with it.

An answer is stored under its ``request_id`` and re-published identically (same message id) whenever
that ``request_id`` is asked again; it is never recomputed against newer rows. To ask again after a
fix (a rate added), send a new ``request_id``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import Discriminator, Field, model_validator

from shared.contracts.base import Contract, CurrencyCode, DecimalStr, MoneyStr, NonEmptyStr
from shared.contracts.invoices import FxConversion, TaxLine

TENANT_EXAMPLE = "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b"
INVOICE_EXAMPLE = "5f0c8a51-0b7e-4b8e-9f3a-2d1c0e9b8a7f"
REQUEST_EXAMPLE = "3b241101-e2bb-4255-8caf-4136c566a962"
LINE_EXAMPLE = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
RATE_ROW_EXAMPLE = "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1"


def quote_key(tenant_id: UUID, invoice_id: UUID) -> str:
    """The partition key of both topics: ``"<tenant_id>:<invoice_id>"``."""
    return f"{tenant_id}:{invoice_id}"


class FailureReason(StrEnum):
    MISSING_TAX_RATE = "missing_tax_rate"
    MISSING_EXCHANGE_RATE = "missing_exchange_rate"
    UNKNOWN_CURRENCY = "unknown_currency"
    INACTIVE_CURRENCY = "inactive_currency"
    UNKNOWN_TENANT = "unknown_tenant"
    INVALID_REQUEST = "invalid_request"


# -- requests (tax.requests.v1) ----------------------------------------------------------------------------


class AmountToConvert(Contract):
    line_id: UUID = Field(description="The invoice line (or charge) the amount belongs to", examples=[LINE_EXAMPLE])
    amount: DecimalStr = Field(description="The amount at full precision, in from_currency", examples=["12.3456"])


class ConversionRequested(Contract):
    type: Literal["conversion.requested"] = Field(
        default="conversion.requested", description="Discriminator", examples=["conversion.requested"]
    )
    request_id: UUID = Field(
        description="Derived deterministically by the asker; the same id always gets the same answer",
        examples=[REQUEST_EXAMPLE],
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    invoice_id: UUID = Field(description="The draft invoice asking", examples=[INVOICE_EXAMPLE])
    from_currency: CurrencyCode = Field(description="The charges' currency", examples=["USD"])
    to_currency: CurrencyCode = Field(description="The invoice (client's) currency", examples=["GBP"])
    on: date = Field(description="The invoice date: the rate in force on it is used", examples=["2026-02-01"])
    amounts: list[AmountToConvert] = Field(
        min_length=1,
        description="The amounts to convert, at full precision",
        examples=[[{"line_id": LINE_EXAMPLE, "amount": "12.3456"}]],
    )


class LineToTax(Contract):
    line_id: UUID = Field(description="The invoice line", examples=[LINE_EXAMPLE])
    amount: MoneyStr = Field(
        description="The line's net rounded to the currency's minor units; its gross when tax_inclusive",
        examples=["19.99"],
    )
    tax_category: str | None = Field(
        description="The service's tax category (catalog), or null", examples=["standard", None]
    )


class TaxRequested(Contract):
    type: Literal["tax.requested"] = Field(
        default="tax.requested", description="Discriminator", examples=["tax.requested"]
    )
    request_id: UUID = Field(
        description="Derived deterministically by the asker; the same id always gets the same answer",
        examples=[REQUEST_EXAMPLE],
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    invoice_id: UUID = Field(description="The draft invoice asking", examples=[INVOICE_EXAMPLE])
    company_id: UUID = Field(description="The client (exemptions are looked up by it)", examples=[LINE_EXAMPLE])
    company_ref: str = Field(description="The client's reference, for messages", examples=["acme"])
    region: str = Field(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description="The client's region, ISO 3166: country and optional subdivision",
        examples=["GB", "US-NY"],
    )
    invoice_date: date = Field(description="Rates in force on this date apply", examples=["2026-02-01"])
    currency: CurrencyCode = Field(description="The invoice currency (amounts are in it)", examples=["GBP"])
    tax_inclusive: bool = Field(
        description="True when line amounts are gross (contain their tax) and must be split", examples=[False]
    )
    lines: list[LineToTax] = Field(
        min_length=1,
        description="The lines to tax",
        examples=[[{"line_id": LINE_EXAMPLE, "amount": "19.99", "tax_category": "standard"}]],
    )


TaxRequest = Annotated[ConversionRequested | TaxRequested, Discriminator("type")]
"""What tax.requests.v1 carries."""


# -- results (tax.results.v1) ------------------------------------------------------------------------------


class PinnedExchangeRate(Contract):
    exchange_rate_id: UUID = Field(description="The exchange-rate row used (never edited)", examples=[RATE_ROW_EXAMPLE])
    currency: CurrencyCode = Field(description="The row's currency", examples=["USD"])
    base_currency: CurrencyCode = Field(description="The tenant's base currency it is quoted against", examples=["GBP"])
    rate: DecimalStr = Field(description="Units of currency per 1 base_currency", examples=["1.2650"])
    rate_date: date = Field(description="The date the rate is for", examples=["2026-01-31"])
    source: str = Field(description="Where the rate came from", examples=["ECB"])


class ConvertedAmount(Contract):
    line_id: UUID = Field(description="As in the request", examples=[LINE_EXAMPLE])
    amount: DecimalStr = Field(description="The amount asked, in from_currency", examples=["12.3456"])
    converted: DecimalStr = Field(
        description="amount x rate, exact (full precision, not rounded)", examples=["9.7593675"]
    )


class ConversionQuoted(Contract):
    type: Literal["conversion.quoted"] = Field(
        default="conversion.quoted", description="Discriminator", examples=["conversion.quoted"]
    )
    request_id: UUID = Field(description="The request answered", examples=[REQUEST_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    invoice_id: UUID = Field(description="The draft invoice", examples=[INVOICE_EXAMPLE])
    from_currency: CurrencyCode = Field(description="Converted from", examples=["USD"])
    to_currency: CurrencyCode = Field(description="Converted to", examples=["GBP"])
    on: date = Field(description="The invoice date asked for", examples=["2026-02-01"])
    rate: DecimalStr = Field(
        description="Units of to_currency per 1 from_currency, as applied: a stored rate, or one derived "
        "through the base currency rounded half-up to 15 significant digits; 1 for the same currency",
        examples=["0.790513833992095"],
    )
    rate_date: date | None = Field(
        description="The date of the rate applied (the older leg's for a cross rate); null for the same currency",
        examples=["2026-01-31", None],
    )
    exchange_rates: list[PinnedExchangeRate] = Field(
        description="The exchange-rate rows used: none for the same currency, one against the base, two across",
        examples=[
            [
                {
                    "exchange_rate_id": RATE_ROW_EXAMPLE,
                    "currency": "USD",
                    "base_currency": "GBP",
                    "rate": "1.2650",
                    "rate_date": "2026-01-31",
                    "source": "ECB",
                }
            ]
        ],
    )
    amounts: list[ConvertedAmount] = Field(
        description="Each amount converted, in request order",
        examples=[[{"line_id": LINE_EXAMPLE, "amount": "12.3456", "converted": "9.7593675"}]],
    )

    def fx(self) -> FxConversion | None:
        """The invoice's ``fx[]`` entry for this conversion (None for the same currency)."""
        if self.rate_date is None:
            return None
        return FxConversion(
            from_currency=self.from_currency, to_currency=self.to_currency, rate=self.rate, rate_date=self.rate_date
        )


class QuotedTax(TaxLine):
    """An invoice line's ``taxes[]`` entry, plus the tax-rate row it came from (invoices pin it)."""

    tax_rate_id: UUID = Field(description="The tax-rate row applied (never edited)", examples=[RATE_ROW_EXAMPLE])


def _total(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


class QuotedLine(Contract):
    line_id: UUID = Field(description="As in the request", examples=[LINE_EXAMPLE])
    net_amount: MoneyStr = Field(
        description="The net: as sent, or what remains of the gross after its taxes when tax_inclusive",
        examples=["19.99"],
    )
    taxes: list[QuotedTax] = Field(
        description="One entry per applicable rate, in application order (empty when untaxed)",
        examples=[
            [
                {
                    "name": "VAT",
                    "rate": "20",
                    "amount": "4.00",
                    "compound": False,
                    "exemption_reason": None,
                    "tax_rate_id": RATE_ROW_EXAMPLE,
                }
            ]
        ],
    )
    tax_amount: MoneyStr = Field(description="Sum of taxes[].amount", examples=["4.00"])
    total: MoneyStr = Field(description="net_amount + tax_amount", examples=["23.99"])

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        if self.tax_amount != _total([t.amount for t in self.taxes]):
            raise ValueError(f"tax_amount {self.tax_amount} is not the sum of taxes[].amount")
        if self.total != self.net_amount + self.tax_amount:
            raise ValueError(f"total {self.total} is not net_amount + tax_amount")
        return self


class TaxQuoted(Contract):
    type: Literal["tax.quoted"] = Field(default="tax.quoted", description="Discriminator", examples=["tax.quoted"])
    request_id: UUID = Field(description="The request answered", examples=[REQUEST_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    invoice_id: UUID = Field(description="The draft invoice", examples=[INVOICE_EXAMPLE])
    currency: CurrencyCode = Field(description="The invoice currency", examples=["GBP"])
    tax_inclusive: bool = Field(description="As in the request", examples=[False])
    lines: list[QuotedLine] = Field(description="Each line taxed, in request order", examples=[[]])
    tax_total: MoneyStr = Field(description="Sum of lines[].tax_amount", examples=["4.00"])

    @model_validator(mode="after")
    def _sums_its_lines(self) -> Self:
        if self.tax_total != _total([line.tax_amount for line in self.lines]):
            raise ValueError(f"tax_total {self.tax_total} is not the sum of lines[].tax_amount")
        return self


class QuoteFailed(Contract):
    type: Literal["quote.failed"] = Field(
        default="quote.failed", description="Discriminator", examples=["quote.failed"]
    )
    request_id: UUID = Field(description="The request answered", examples=[REQUEST_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    invoice_id: UUID = Field(description="The draft invoice: hold it with this reason", examples=[INVOICE_EXAMPLE])
    request_type: Literal["conversion.requested", "tax.requested"] = Field(
        description="Which request failed", examples=["tax.requested"]
    )
    reason: FailureReason = Field(description="Machine-readable reason", examples=["missing_tax_rate"])
    message: NonEmptyStr = Field(
        description="What is missing, for the person releasing the hold",
        examples=["no tax rate in force for region US-NY and tax category 'standard' on 2026-02-01"],
    )


class RatesChanged(Contract):
    """Tax-currency learned a rate it may have lacked: drafts held for a missing rate can be asked again."""

    type: Literal["rates.changed"] = Field(
        default="rates.changed", description="Discriminator", examples=["rates.changed"]
    )
    event_id: UUID = Field(
        description="Derived from the rows added (a repeat is the same event)", examples=[REQUEST_EXAMPLE]
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    change: Literal["tax_rate", "exchange_rate", "currency"] = Field(
        description="A tax rate row added, exchange-rate rows added or corrected, or a currency activated",
        examples=["tax_rate"],
    )
    detail: NonEmptyStr = Field(
        description="What was added, for logs and audit", examples=["VAT 20 % in GB from 2020-01-01"]
    )
    occurred_at: datetime = Field(description="When it was recorded", examples=["2026-02-01T09:00:00Z"])

    def key(self) -> str:
        return str(self.tenant_id)


TaxResult = Annotated[ConversionQuoted | TaxQuoted | QuoteFailed | RatesChanged, Discriminator("type")]
"""What tax.results.v1 carries: answers to requests, and notices that rates were added (held drafts retry)."""
