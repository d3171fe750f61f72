"""Invoicing's message handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, TypeAdapter

from services.invoicing import use_cases
from services.invoicing.domain import links
from services.invoicing.settings import InvoicingSettings
from shared.auth import Permission, Principal, current_principal, requires
from shared.contracts.approvals import ApprovalDecision, ApprovalRuleSet
from shared.contracts.base import DecimalStr, NonEmptyStr
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.invoices import CreditNoteReason
from shared.contracts.rating import RatingEvent
from shared.contracts.tax import TaxResult
from shared.messaging.consumer import BatchConsumer, Reject
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

_RATING = TypeAdapter(RatingEvent)
_TAX = TypeAdapter(TaxResult)


class _RatingEnvelope:
    """Adapter so parse_contract can validate the discriminated union."""

    @staticmethod
    def model_validate(raw: object) -> RatingEvent:
        return _RATING.validate_python(raw)


def parse_rating(env: Envelope) -> tuple[UUID, RatingEvent]:
    return parse_contract(env, _RatingEnvelope)  # type: ignore[arg-type]


class _TaxEnvelope:
    @staticmethod
    def model_validate(raw: object) -> TaxResult:
        return _TAX.validate_python(raw)


def parse_tax(env: Envelope) -> tuple[UUID, TaxResult]:
    return parse_contract(env, _TaxEnvelope)  # type: ignore[arg-type]


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


CHARGES = BatchConsumer(service="invoicing", consumer="charges", parse=parse_rating, apply=use_cases.take_rating_events)
CATALOG = BatchConsumer(service="invoicing", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
TAX = BatchConsumer(service="invoicing", consumer="tax", parse=parse_tax, apply=use_cases.take_tax_results)


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


def parse_rule_set(env: Envelope) -> tuple[UUID, ApprovalRuleSet]:
    return parse_contract(env, ApprovalRuleSet)


def parse_decision(env: Envelope) -> tuple[UUID, ApprovalDecision]:
    return parse_contract(env, ApprovalDecision)


CLOCK = BatchConsumer(service="invoicing", consumer="clock", parse=parse_tick, apply=use_cases.take_ticks)
RULES = BatchConsumer(service="invoicing", consumer="rules", parse=parse_rule_set, apply=use_cases.keep_rule_sets)
DECISIONS = BatchConsumer(
    service="invoicing", consumer="decisions", parse=parse_decision, apply=use_cases.apply_decisions
)


# -- HTTP: the operator API (tenant from the bearer token; every change audited in its transaction) ---------

Reader = Annotated[Principal, Depends(requires(Permission.INVOICES_READ))]  # not technicians (issue 17)
Manager = Annotated[Principal, Depends(requires(Permission.INVOICES_MANAGE))]
router = APIRouter(prefix="/v1")


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


def _now() -> datetime:
    # The edge reads the wall clock; use cases prefer the tenant's billing time when it has ticked.
    return datetime.now(UTC)


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except use_cases.Refused as exc:
        if exc.conflict:
            raise HTTPException(409, detail=str(exc)) from exc
        raise HTTPException(422, detail=[{"loc": ["body", exc.field or "body"], "msg": str(exc)}]) from exc


def _json(value: object) -> Any:
    return jsonable_encoder(value, custom_encoder={Decimal: str})


async def _change(request: Request, who: Principal, action: Callable[..., Awaitable[Any]], **arguments: Any) -> Any:
    """One operator change: the use case in the caller's tenant, as the caller, at the edge's wall clock;
    its errors as 404 / 409 / 422; its result as JSON (pydantic models dumped)."""
    with _answers():
        result = await action(_pool(request), tenant_id=who.tenant_id, actor=who.actor, wall=_now(), **arguments)
    return _json(result.model_dump(mode="json") if isinstance(result, BaseModel) else result)


async def _read(request: Request, who: Principal, query: Callable[..., Awaitable[Any]], **arguments: Any) -> Any:
    with _answers():
        return _json(await query(_pool(request), tenant_id=who.tenant_id, **arguments))


class PaymentInput(BaseModel):
    amount: DecimalStr = Field(description="Amount received, in the invoice currency", examples=["50.00"])
    method: NonEmptyStr = Field(description="How it was paid", examples=["bank_transfer"])
    status: Literal["pending", "confirmed"] = Field(
        default="confirmed", description="pending until confirmed, or confirmed now"
    )


class RefundInput(BaseModel):
    amount: DecimalStr = Field(description="Amount to refund", examples=["20.00"])
    reason: NonEmptyStr = Field(description="Why", examples=["Duplicate payment"])


class CreditPart(BaseModel):
    line_id: UUID = Field(description="The invoice line credited in part")
    amount: DecimalStr = Field(description="The net credited; its taxes follow in proportion", examples=["25.00"])


class CreditNoteInput(BaseModel):
    reason: CreditNoteReason = Field(
        description="return, pricing_error, service_issue, duplicate_charge, goodwill, other"
    )
    line_ids: list[UUID] | None = Field(default=None, description="Invoice lines credited whole")
    parts: list[CreditPart] | None = Field(
        default=None, description="Or part of lines: a net amount per line, carrying its proportional taxes"
    )
    amount: DecimalStr | None = Field(default=None, description="Or a gross amount credited as one untaxed line")
    memo: str | None = Field(default=None, description="Printed on the credit note", examples=["Outage on 12 Jan"])


class ReasonInput(BaseModel):
    reason: NonEmptyStr = Field(description="Why", examples=["Issued to the wrong client"])


@router.get("/invoices", summary="Invoices, filtered by status and client, in pages by id", tags=["invoices"])
async def list_invoices(
    request: Request,
    who: Reader,
    status: Annotated[str | None, Query(description="Only this status")] = None,
    company_id: Annotated[UUID | None, Query(description="Only this client")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(description="The last invoice_id of the previous page")] = None,
) -> Any:
    return await _read(
        request, who, use_cases.list_invoices, status=status, company_id=company_id, limit=limit, after=after
    )


@router.get("/invoices/{invoice_id}", summary="An invoice with its lines drilled down to charges", tags=["invoices"])
async def get_invoice(request: Request, who: Reader, invoice_id: UUID) -> Any:
    with _answers():
        detail = await use_cases.invoice_detail(_pool(request), tenant_id=who.tenant_id, invoice_id=invoice_id)
    row = detail["row"]
    assert isinstance(row, dict)
    charges = detail["charges"]
    discounts = detail["discounts"]
    assert isinstance(charges, dict)
    assert isinstance(discounts, dict)
    document = row.get("document")
    lines = []
    for line in (document or {}).get("lines", []):
        line_id = UUID(line["line_id"])
        lines.append(line | {"charges": charges.get(line_id, []), "discounts": discounts.get(line_id, [])})
    return _json(
        {
            "invoice_id": row["invoice_id"],
            "invoice_number": row["invoice_number"],
            "status": row["status"],
            "held_reason": row["held_reason"],
            "attempt": row["attempt"],
            "company_id": row["company_id"],
            "company_ref": row["company_ref"],
            "period_start": row["period_start"],
            "period_end": row["period_end"],
            "document": document,
            "lines": lines,
            "pinned": row["pinned"],
            "payments": detail["payments"],
            "credit_notes": detail["credit_notes"],
            "adjustments": detail["adjustments"],
        }
    )


@router.get("/invoices/{invoice_id}/pdf", summary="The invoice as a PDF", tags=["invoices"])
async def invoice_pdf(request: Request, who: Reader, invoice_id: UUID) -> Response:
    with _answers():
        name, pdf = await use_cases.invoice_pdf_bytes(_pool(request), tenant_id=who.tenant_id, invoice_id=invoice_id)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/invoices/{invoice_id}/retry", summary="Ask tax-currency again for a held invoice", tags=["invoices"])
async def retry(request: Request, who: Manager, invoice_id: UUID) -> Any:
    status = await _change(request, who, use_cases.retry_held, invoice_id=invoice_id)
    return {"invoice_id": str(invoice_id), "status": status}


@router.post("/invoices/{invoice_id}/cancel", summary="Abandon a draft (held) invoice", tags=["invoices"])
async def cancel(request: Request, who: Manager, invoice_id: UUID) -> Any:
    await _change(request, who, use_cases.cancel_draft, invoice_id=invoice_id)
    return {"invoice_id": str(invoice_id), "status": "cancelled"}


@router.post("/invoices/{invoice_id}/void", summary="Void a finalized invoice (keeps its number)", tags=["invoices"])
async def void(request: Request, who: Manager, invoice_id: UUID, body: ReasonInput) -> Any:
    return await _change(request, who, use_cases.void, invoice_id=invoice_id, reason=body.reason)


def _settings(request: Request) -> InvoicingSettings:
    settings: InvoicingSettings = request.app.state.runtime.settings
    return settings


@router.post(
    "/invoices/{invoice_id}/link",
    summary="A signed, expiring link the client opens without a platform user (HTML and PDF)",
    tags=["invoices"],
)
async def issue_link(request: Request, who: Manager, invoice_id: UUID) -> Any:
    settings = _settings(request)
    return await _change(
        request,
        who,
        use_cases.issue_link,
        invoice_id=invoice_id,
        secret=settings.invoice_link_secret,
        days=settings.invoice_link_days,
        base_url=settings.public_base_url,
    )


@router.post("/invoices/{invoice_id}/{step}", summary="Mark an invoice sent, viewed or disputed", tags=["invoices"])
async def mark(
    request: Request,
    who: Manager,
    invoice_id: UUID,
    step: Literal["sent", "viewed", "disputed"],
    body: ReasonInput | None = None,
) -> Any:
    return await _change(
        request, who, use_cases.mark, invoice_id=invoice_id, step=step, reason=body.reason if body else None
    )


@router.put("/invoices/{invoice_id}/payments/{payment_id}", summary="Record a payment", tags=["payments"])
async def pay(request: Request, who: Manager, invoice_id: UUID, payment_id: UUID, body: PaymentInput) -> Any:
    return await _change(
        request,
        who,
        use_cases.record_payment,
        invoice_id=invoice_id,
        payment_id=payment_id,
        amount=body.amount,
        method=body.method,
        status=body.status,
    )


@router.post("/payments/{payment_id}/{outcome}", summary="Confirm or fail a pending payment", tags=["payments"])
async def settle(request: Request, who: Manager, payment_id: UUID, outcome: Literal["confirmed", "failed"]) -> Any:
    return await _change(request, who, use_cases.settle_payment, payment_id=payment_id, outcome=outcome)


@router.put("/payments/{payment_id}/refunds/{refund_id}", summary="Refund (part of) a payment", tags=["payments"])
async def refund(request: Request, who: Manager, payment_id: UUID, refund_id: UUID, body: RefundInput) -> Any:
    return await _change(
        request,
        who,
        use_cases.request_refund,
        payment_id=payment_id,
        refund_id=refund_id,
        amount=body.amount,
        reason=body.reason,
    )


@router.put(
    "/invoices/{invoice_id}/credit-notes/{credit_note_id}", summary="Draft a credit note", tags=["credit notes"]
)
async def draft_credit_note(
    request: Request, who: Manager, invoice_id: UUID, credit_note_id: UUID, body: CreditNoteInput
) -> Any:
    return await _change(
        request,
        who,
        use_cases.create_credit_note,
        invoice_id=invoice_id,
        credit_note_id=credit_note_id,
        reason=body.reason,
        line_ids=body.line_ids,
        amount=body.amount,
        memo=body.memo,
        parts={p.line_id: p.amount for p in body.parts} if body.parts is not None else None,
    )


@router.post(
    "/credit-notes/{credit_note_id}/{action}", summary="Issue (approve and apply) or cancel", tags=["credit notes"]
)
async def credit_note_action(
    request: Request, who: Manager, credit_note_id: UUID, action: Literal["issue", "cancel"]
) -> Any:
    act = use_cases.issue_credit_note if action == "issue" else use_cases.cancel_credit_note
    return await _change(request, who, act, credit_note_id=credit_note_id)


@router.get("/companies/{company_id}/account", summary="Balance, available credit and history", tags=["ledger"])
async def account(request: Request, who: Reader, company_id: UUID) -> Any:
    return await _read(request, who, use_cases.account, company_id=company_id)


class AdjustmentInput(BaseModel):
    amount: DecimalStr = Field(
        description="Signed, in the client's currency: + charges, - credits", examples=["-25.00"]
    )
    description: NonEmptyStr = Field(description="Printed on the invoice line", examples=["SLA credit, January"])


@router.put(
    "/companies/{company_id}/adjustments/{adjustment_id}",
    summary="A billing adjustment for the client's next invoice",
    tags=["ledger"],
)
async def adjust(request: Request, who: Manager, company_id: UUID, adjustment_id: UUID, body: AdjustmentInput) -> Any:
    return await _change(
        request,
        who,
        use_cases.create_adjustment,
        company_id=company_id,
        adjustment_id=adjustment_id,
        amount=body.amount,
        description=body.description,
    )


class TenantSettingsInput(BaseModel):
    tax_inclusive: bool = Field(description="Catalog prices include tax (lines are split by tax-currency)")


class ClientSettingsInput(BaseModel):
    tax_inclusive: bool | None = Field(description="This client's own setting; null follows the tenant's")


@router.put("/invoice-settings", summary="The tenant's default: do catalog prices include tax?", tags=["settings"])
async def tenant_settings(request: Request, who: Manager, body: TenantSettingsInput) -> Any:
    return await _change(request, who, use_cases.set_tax_inclusive, company_id=None, tax_inclusive=body.tax_inclusive)


@router.put(
    "/companies/{company_id}/invoice-settings",
    summary="A client's own setting: do its prices include tax? (null: the tenant's)",
    tags=["settings"],
)
async def client_settings(request: Request, who: Manager, company_id: UUID, body: ClientSettingsInput) -> Any:
    return await _change(
        request, who, use_cases.set_tax_inclusive, company_id=company_id, tax_inclusive=body.tax_inclusive
    )


@router.get("/companies/{company_id}/invoice-settings", summary="The client's settings in effect", tags=["settings"])
async def get_client_settings(request: Request, who: Reader, company_id: UUID) -> Any:
    return await _read(request, who, use_cases.tax_settings, company_id=company_id)


@router.get("/companies/{company_id}/adjustments", summary="The client's billing adjustments", tags=["ledger"])
async def list_adjustments(request: Request, who: Reader, company_id: UUID) -> Any:
    return await _read(request, who, use_cases.adjustments, company_id=company_id)


@router.get(
    "/companies/{company_id}/preview",
    summary="The next invoice so far: open-period lines with discounts (untaxed)",
    tags=["invoices"],
)
async def preview(request: Request, who: Reader, company_id: UUID) -> Any:
    return await _read(request, who, use_cases.preview, company_id=company_id)


@router.get(
    "/invoices/{invoice_id}/document",
    summary="The invoice as HTML; opened by the client's own contact, it becomes viewed",
    tags=["invoices"],
    response_class=HTMLResponse,
)
async def document(
    request: Request, who: Annotated[Principal, Depends(current_principal)], invoice_id: UUID
) -> HTMLResponse:
    try:
        html = await use_cases.open_document(
            _pool(request), tenant_id=who.tenant_id, invoice_id=invoice_id, viewer=who, wall=_now()
        )
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except use_cases.Refused as exc:
        raise HTTPException(403 if exc.field == "authorization" else 409, detail=str(exc)) from exc
    return HTMLResponse(html)


# -- signed client links (no token: the link's signature is the credential) ---------------------------------


async def _open_link(
    request: Request, tenant_id: UUID, invoice_id: UUID, expires: int, signature: str, *, pdf: bool
) -> tuple[Any, bytes | str]:
    try:
        return await use_cases.open_link(
            _pool(request),
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            expires=expires,
            signature=signature,
            secret=_settings(request).invoice_link_secret,
            wall=_now(),
            pdf=pdf,
        )
    except links.BadLink as exc:
        raise HTTPException(403, detail=str(exc)) from exc
    except links.ExpiredLink as exc:
        raise HTTPException(410, detail=str(exc)) from exc
    except use_cases.NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except use_cases.Refused as exc:
        raise HTTPException(503, detail=str(exc)) from exc


Expires = Annotated[int, Query(description="Unix seconds the link expires at, as issued")]
Signature = Annotated[str, Query(max_length=128, description="The link's HMAC-SHA256, hex, as issued")]


@router.get(
    "/links/{tenant_id}/invoices/{invoice_id}",
    summary="The invoice as HTML through its signed link; the first opening marks it viewed",
    tags=["client links"],
    response_class=HTMLResponse,
)
async def open_link(
    request: Request, tenant_id: UUID, invoice_id: UUID, expires: Expires, signature: Signature
) -> HTMLResponse:
    _, html = await _open_link(request, tenant_id, invoice_id, expires, signature, pdf=False)
    assert isinstance(html, str)
    return HTMLResponse(html)


@router.get(
    "/links/{tenant_id}/invoices/{invoice_id}/pdf",
    summary="The invoice as PDF through its signed link; the first opening marks it viewed",
    tags=["client links"],
)
async def open_link_pdf(
    request: Request, tenant_id: UUID, invoice_id: UUID, expires: Expires, signature: Signature
) -> Response:
    invoice, pdf = await _open_link(request, tenant_id, invoice_id, expires, signature, pdf=True)
    assert isinstance(pdf, bytes)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{invoice.invoice_number}.pdf"'},
    )


__all__ = ["CATALOG", "CHARGES", "CLOCK", "DECISIONS", "RULES", "TAX", "Reject", "router"]
