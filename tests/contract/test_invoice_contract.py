"""`billing.invoices.v1` — InvoiceEvent and its payloads, as fixed in docs/contracts."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts import InvoiceEvent, InvoiceEventType, InvoiceStatus

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
INVOICE_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
PAYMENT_ID = "16fd2706-8baf-433b-82eb-8c7fada847da"


def line(line_id: str, kind: str, amount: str, discount: str, net: str, tax: str, total: str) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": kind,
        "service_ref": "RMM-DEVICE",
        "description": f"{kind} line",
        "quantity": "1",
        "unit": "device",
        "unit_price": amount,
        "amount": amount,
        "discount_amount": discount,
        "net_amount": net,
        "taxes": [{"name": "VAT", "rate": "7.5", "amount": tax, "compound": False, "exemption_reason": None}],
        "tax_amount": tax,
        "total": total,
        "period_start": "2025-01-01",
        "period_end": "2025-02-01",
    }


INVOICE: dict[str, Any] = {
    "invoice_id": INVOICE_ID,
    "invoice_number": "INV-2501-00042",
    "status": "finalized",
    "currency": "USD",
    "tax_inclusive": False,
    "issue_date": "2025-02-01",
    "due_date": "2025-03-03",
    "period_start": "2025-01-01",
    "period_end": "2025-02-01",
    "customer": {"name": "Acme", "billing_email": "ap@acme.example", "region": "US-TX", "tax_id": None},
    "lines": [
        line("11111111-1111-4111-8111-111111111111", "fixed", "105.00", "5.00", "100.00", "7.50", "107.50"),
        line("22222222-2222-4222-8222-222222222222", "usage", "12.00", "0.00", "12.00", "0.90", "12.90"),
    ],
    "subtotal": "117.00",
    "discount_total": "5.00",
    "tax_total": "8.40",
    "total": "120.40",
    "credits_applied": "0.00",
    "amount_paid": "20.00",
    "amount_due": "100.40",
    "fx": [{"from_currency": "EUR", "to_currency": "USD", "rate": "1.0832", "rate_date": "2025-01-31"}],
}
ENVELOPE: dict[str, Any] = {
    "event_id": "3b241101-e2bb-4255-8caf-4136c566a962",
    "event_type": "invoice.finalized",
    "occurred_at": "2025-02-01T00:05:00Z",
    "tenant_id": TENANT,
    "company_ref": "ACME-001",
    "livemode": True,
}
PAYMENT = {
    "payment_id": PAYMENT_ID,
    "invoice_id": INVOICE_ID,
    "amount": "20.00",
    "currency": "USD",
    "received_at": "2025-02-10T14:00:00+01:00",
    "method": "bank_transfer",
    "invoice_status": "partially_paid",
}


def event(payload: dict[str, Any] | None = None, /, **changes: Any) -> dict[str, Any]:
    """A finalized-invoice event with `changes` applied; a key path "a.b.0.c" reaches into nested data."""
    data = {**ENVELOPE, **(payload if payload is not None else {"invoice": copy.deepcopy(INVOICE)})}
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    return data


def parse(data: dict[str, Any]) -> InvoiceEvent:
    return InvoiceEvent.model_validate_json(json.dumps(data))


def first_error(data: dict[str, Any]) -> Any:
    with pytest.raises(ValidationError) as exc:
        parse(data)
    return exc.value.errors()[0]


class TestInvoiceEvent:
    def test_accepts_a_reconciling_finalized_invoice(self) -> None:
        parsed = parse(event())
        assert parsed.event_type is InvoiceEventType.INVOICE_FINALIZED
        assert parsed.invoice is not None
        assert parsed.invoice.status is InvoiceStatus.FINALIZED
        assert parsed.invoice.total == Decimal("120.40")

    def test_round_trips_json_keeping_every_decimal_string_exactly(self) -> None:
        data = event()
        dumped = json.loads(parse(data).model_dump_json())
        assert dumped["invoice"]["lines"] == data["invoice"]["lines"]
        assert dumped["invoice"]["fx"] == data["invoice"]["fx"]
        assert dumped["invoice"]["total"] == "120.40"

    def test_accepts_line_kinds_added_later(self) -> None:
        parsed = parse(event(**{"invoice.lines.1.kind": "licence_true_up"}))
        assert parsed.invoice is not None
        assert parsed.invoice.lines[1].kind == "licence_true_up"

    def test_keeps_unknown_fields_at_every_level(self) -> None:
        parsed = parse(event(**{"schema_rev": 2, "invoice.po_number": "PO-9", "invoice.lines.0.sku": "X"}))
        assert parsed.model_extra == {"schema_rev": 2}
        assert parsed.invoice is not None
        assert parsed.invoice.model_extra == {"po_number": "PO-9"}
        assert parsed.invoice.lines[0].model_extra == {"sku": "X"}

    def test_accepts_a_sandbox_payment_event(self) -> None:
        parsed = parse(event({"payment": PAYMENT}, event_type="invoice.payment_recorded", livemode=False))
        assert parsed.payment is not None
        assert parsed.payment.invoice_status == "partially_paid"

    def test_accepts_a_refund_event(self) -> None:
        refund = {
            "refund_id": "9c5b94b1-35ad-49bb-b118-8e8fc24abf80",
            "payment_id": PAYMENT_ID,
            "invoice_id": INVOICE_ID,
            "amount": "20.00",
            "currency": "USD",
            "refunded_at": "2025-02-12T08:00:00Z",
            "reason": "duplicate",
        }
        assert parse(event({"refund": refund}, event_type="invoice.refund_recorded")).refund is not None

    def test_accepts_a_credit_note_whose_total_is_the_sum_of_its_lines(self) -> None:
        credit_note = {
            "credit_note_id": "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1",
            "credit_note_number": "CN-2502-00003",
            "invoice_id": INVOICE_ID,
            "reason": "pricing_error",
            "currency": "USD",
            "lines": [INVOICE["lines"][1]],
            "total": "12.90",
        }
        assert parse(event({"credit_note": credit_note}, event_type="credit_note.issued")).credit_note

    def test_is_keyed_by_tenant_and_company(self) -> None:
        assert parse(event()).key() == f"{TENANT}:ACME-001"

    @pytest.mark.parametrize(
        ("changes", "loc"),
        [
            ({"event_id": ...}, ("event_id",)),
            ({"event_id": "evt-1"}, ("event_id",)),
            ({"event_type": "invoice.drafted"}, ("event_type",)),
            ({"occurred_at": "2025-02-01T00:05:00"}, ("occurred_at",)),
            ({"livemode": ...}, ("livemode",)),
            ({"invoice.invoice_number": "INV-25-1"}, ("invoice", "invoice_number")),
            ({"invoice.invoice_number": "INV-2501-0042"}, ("invoice", "invoice_number")),
            ({"invoice.status": "draft"}, ("invoice", "status")),
            ({"invoice.currency": "usd"}, ("invoice", "currency")),
            ({"invoice.total": 120.4}, ("invoice", "total")),
            ({"invoice.customer.name": ...}, ("invoice", "customer", "name")),
            ({"invoice.lines.0.amount": 105}, ("invoice", "lines", 0, "amount")),
            ({"invoice.lines.0.taxes.0.rate": "-1"}, ("invoice", "lines", 0, "taxes", 0, "rate")),
            ({"invoice.fx.0.to_currency": "DOLLAR"}, ("invoice", "fx", 0, "to_currency")),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
        assert first_error(event(**changes))["loc"] == loc

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (event({}), "exactly one of"),
            (event({"invoice": INVOICE, "payment": PAYMENT}), "exactly one of"),
            (event({"payment": PAYMENT}), "event_type invoice.finalized carries `invoice`"),
            (event({"payment": {**PAYMENT, "invoice_status": "void"}}), "invoice_status"),
        ],
        ids=["no payload", "two payloads", "wrong payload", "payment status"],
    )
    def test_rejects_an_envelope_without_exactly_the_matching_payload(self, data: dict[str, Any], message: str) -> None:
        assert message in str(first_error(data))


class TestInvoiceSums:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"invoice.subtotal": "117.01"}, "subtotal 117.01 does not reconcile: sum of lines[].amount"),
            ({"invoice.discount_total": "4.00"}, "discount_total 4.00 does not reconcile"),
            ({"invoice.tax_total": "8.41"}, "tax_total 8.41 does not reconcile"),
            ({"invoice.total": "120.41"}, "total 120.41 does not reconcile: subtotal - discount_total"),
            ({"invoice.amount_due": "120.40"}, "amount_due 120.40 does not reconcile"),
            ({"invoice.lines.0.net_amount": "105.00"}, "net_amount 105.00 does not reconcile"),
            ({"invoice.lines.0.tax_amount": "7.49"}, "tax_amount 7.49 does not reconcile: sum of taxes"),
            ({"invoice.lines.0.total": "107.51"}, "total 107.51 does not reconcile: net_amount + tax_amount"),
        ],
        ids=lambda v: str(v)[:30],
    )
    def test_rejects_an_invoice_naming_the_broken_sum(self, changes: dict[str, Any], message: str) -> None:
        assert message in first_error(event(**changes))["msg"]

    def test_compare_amounts_by_value_not_spelling(self) -> None:
        assert parse(event(**{"invoice.credits_applied": "0", "invoice.total": "120.400"})).invoice

    def test_rejects_an_empty_period(self) -> None:
        assert "period_end" in first_error(event(**{"invoice.period_end": "2025-01-01"}))["msg"]

    def test_rejects_a_credit_note_whose_total_is_not_the_sum_of_its_lines(self) -> None:
        credit_note = {
            "credit_note_id": "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1",
            "credit_note_number": "CN-2502-00003",
            "invoice_id": INVOICE_ID,
            "reason": "goodwill",
            "currency": "USD",
            "lines": [INVOICE["lines"][1]],
            "total": "12.00",
        }
        error = first_error(event({"credit_note": credit_note}, event_type="credit_note.issued"))
        assert "total 12.00 does not reconcile" in error["msg"]
