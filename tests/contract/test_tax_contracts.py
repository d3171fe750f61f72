"""Tax quote contracts (tax.requests.v1 / tax.results.v1): discriminated by type, decimals as strings, sums
that reconcile, and an fx[] entry derivable from a conversion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.invoices import FxConversion, TaxLine
from shared.contracts.tax import (
    ConversionQuoted,
    ConversionRequested,
    QuotedTax,
    QuoteFailed,
    TaxQuoted,
    TaxRequest,
    TaxRequested,
    TaxResult,
    quote_key,
)

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
INVOICE = "5f0c8a51-0b7e-4b8e-9f3a-2d1c0e9b8a7f"
LINE = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
ROW = "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1"
TAX_REQUEST: dict[str, Any] = {
    "type": "tax.requested",
    "request_id": "3b241101-e2bb-4255-8caf-4136c566a962",
    "tenant_id": TENANT,
    "invoice_id": INVOICE,
    "company_id": LINE,
    "company_ref": "acme",
    "region": "US-NY",
    "invoice_date": "2026-02-01",
    "currency": "USD",
    "tax_inclusive": False,
    "lines": [{"line_id": LINE, "amount": "80.00", "tax_category": None}],
}
TAX = {"name": "NY State Sales Tax", "rate": "4", "amount": "3.20", "compound": False, "exemption_reason": None}
TAX_QUOTED: dict[str, Any] = {
    "type": "tax.quoted",
    "request_id": TAX_REQUEST["request_id"],
    "tenant_id": TENANT,
    "invoice_id": INVOICE,
    "currency": "USD",
    "tax_inclusive": False,
    "lines": [
        {
            "line_id": LINE,
            "net_amount": "80.00",
            "taxes": [TAX | {"tax_rate_id": ROW}],
            "tax_amount": "3.20",
            "total": "83.20",
        }
    ],
    "tax_total": "3.20",
}
CONVERSION_QUOTED: dict[str, Any] = {
    "type": "conversion.quoted",
    "request_id": TAX_REQUEST["request_id"],
    "tenant_id": TENANT,
    "invoice_id": INVOICE,
    "from_currency": "USD",
    "to_currency": "GBP",
    "on": "2026-02-01",
    "rate": "0.8",
    "rate_date": "2026-01-30",
    "exchange_rates": [
        {
            "exchange_rate_id": ROW,
            "currency": "USD",
            "base_currency": "GBP",
            "rate": "1.25",
            "rate_date": "2026-01-30",
            "source": "ECB",
        }
    ],
    "amounts": [{"line_id": LINE, "amount": "12.3456", "converted": "9.87648"}],
}

REQUESTS: TypeAdapter[Any] = TypeAdapter(TaxRequest)
RESULTS: TypeAdapter[Any] = TypeAdapter(TaxResult)


def test_requests_are_told_apart_by_type() -> None:
    conversion = {k: v for k, v in CONVERSION_QUOTED.items() if k in ConversionRequested.model_fields}
    conversion |= {"type": "conversion.requested", "amounts": [{"line_id": LINE, "amount": "12.3456"}]}

    assert isinstance(REQUESTS.validate_json(json.dumps(TAX_REQUEST)), TaxRequested)
    assert isinstance(REQUESTS.validate_json(json.dumps(conversion)), ConversionRequested)


def test_results_are_told_apart_by_type() -> None:
    failed = {
        "type": "quote.failed",
        "request_id": TAX_REQUEST["request_id"],
        "tenant_id": TENANT,
        "invoice_id": INVOICE,
        "request_type": "tax.requested",
        "reason": "missing_tax_rate",
        "message": "no tax rate in force for region FR and no tax category on 2026-02-01",
    }

    assert isinstance(RESULTS.validate_json(json.dumps(TAX_QUOTED)), TaxQuoted)
    assert isinstance(RESULTS.validate_json(json.dumps(CONVERSION_QUOTED)), ConversionQuoted)
    assert isinstance(RESULTS.validate_json(json.dumps(failed)), QuoteFailed)


def test_an_unknown_failure_reason_is_refused() -> None:
    with pytest.raises(ValidationError):
        QuoteFailed.model_validate(
            {"request_id": ROW, "tenant_id": TENANT, "invoice_id": INVOICE, "request_type": "tax.requested",
             "reason": "zero_tax", "message": "x"}
        )  # fmt: skip


def test_money_must_be_a_decimal_string_not_a_json_number() -> None:
    lines = [{"line_id": LINE, "amount": 80.0, "tax_category": None}]

    with pytest.raises(ValidationError) as exc:
        TaxRequested.model_validate_json(json.dumps(TAX_REQUEST | {"lines": lines}))

    assert exc.value.errors()[0]["loc"] == ("lines", 0, "amount")


def test_a_region_must_be_iso_3166() -> None:
    with pytest.raises(ValidationError):
        TaxRequested.model_validate_json(json.dumps(TAX_REQUEST | {"region": "New York"}))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("lines", 0, "tax_amount"), "3.21", "sum of taxes"),
        (("lines", 0, "total"), "83.21", r"net_amount \+ tax_amount"),
        (("tax_total",), "3.21", "sum of lines"),
    ],
)
def test_a_tax_quote_whose_sums_do_not_reconcile_is_refused(path: tuple[Any, ...], value: str, message: str) -> None:
    doc = json.loads(json.dumps(TAX_QUOTED))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(ValidationError, match=message):
        TaxQuoted.model_validate(doc)


def test_a_quoted_tax_is_the_invoice_lines_tax_entry_plus_the_row_it_came_from() -> None:
    quoted = QuotedTax.model_validate(TAX | {"tax_rate_id": ROW})

    assert isinstance(quoted, TaxLine)
    assert TaxLine.model_validate(TAX).model_dump() == {k: v for k, v in quoted.model_dump().items() if k in TAX}


def test_a_conversion_gives_the_invoices_fx_entry() -> None:
    quoted = ConversionQuoted.model_validate(CONVERSION_QUOTED)
    same = ConversionQuoted.model_validate(
        CONVERSION_QUOTED | {"to_currency": "USD", "rate": "1", "rate_date": None, "exchange_rates": []}
    )

    assert quoted.fx() == FxConversion(from_currency="USD", to_currency="GBP", rate="0.8", rate_date="2026-01-30")  # type: ignore[arg-type]
    assert same.fx() is None


def test_both_topics_are_keyed_by_tenant_and_invoice() -> None:
    request = TaxRequested.model_validate(TAX_REQUEST)

    assert quote_key(request.tenant_id, request.invoice_id) == f"{TENANT}:{INVOICE}"


def test_a_quote_survives_the_wire_unchanged() -> None:
    quoted = TaxQuoted.model_validate(TAX_QUOTED)

    assert json.loads(quoted.model_dump_json()) == TAX_QUOTED
