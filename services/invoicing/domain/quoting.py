"""Asking tax-currency for a draft invoice's conversions and taxes, pure: request ids, requests, matching answers.

A draft asks ``conversion.requested`` once per foreign charge currency, then (all answered) applies its
discounts and asks ``tax.requested`` on the rounded nets. Request ids are derived from the invoice, the
question and the **attempt**: tax-currency stores every answer (a failure too) under its request id, so
retrying a held invoice after an operator fixed a rate bumps the attempt and asks with new ids, while a
redelivered batch of the same attempt asks with the same ids and gets the same answers.
"""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from pydantic import BaseModel

from services.invoicing.domain.pricing import DraftLine, PricedLine
from shared.contracts.invoices import FxConversion
from shared.contracts.tax import ConversionQuoted, TaxQuoted


def conversion_request_id(invoice_id: UUID, from_currency: str, attempt: int) -> UUID:
    return uuid.uuid5(invoice_id, f"conversion:{from_currency}:{attempt}")


def tax_request_id(invoice_id: UUID, attempt: int) -> UUID:
    return uuid.uuid5(invoice_id, f"tax:{attempt}")


class Work(BaseModel):
    """What a draft carries between its questions (stored on the invoice row as ``work``)."""

    issue_date: date
    lines: list[DraftLine]
    charge_count: int = 0  # what rating said it rated into the period
    conversions: dict[str, ConversionQuoted] = {}
    priced: list[PricedLine] = []
    tax: TaxQuoted | None = None

    def waiting_for(self, currency: str) -> list[str]:
        """Foreign currencies not yet converted."""
        return sorted({x.currency for x in self.lines} - {currency} - set(self.conversions))

    def fx(self) -> list[FxConversion]:
        return [fx for q in sorted(self.conversions.values(), key=lambda q: q.from_currency) if (fx := q.fx())]

    def pinned(self) -> dict[str, object]:
        """The rate rows the invoice was quoted with: exchange-rate rows and, per line, tax-rate rows."""
        return {
            "exchange_rates": [r.model_dump(mode="json") for q in self.conversions.values() for r in q.exchange_rates],
            "tax_rates": {
                str(line.line_id): [
                    {"tax_rate_id": str(t.tax_rate_id), "name": t.name, "rate": str(t.rate)} for t in line.taxes
                ]
                for line in (self.tax.lines if self.tax else [])
            },
        }
