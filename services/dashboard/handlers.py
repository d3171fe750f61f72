"""The dashboard's pages: thin routes that call the services' HTTP APIs with the signed-in user's token and
render templates. Core flows are plain links and POST forms (no JavaScript needed)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.dashboard import views
from services.dashboard.adapters.api import ApiError, Apis
from services.dashboard.session import Viewer, current_viewer, flash, read_token, sign_in, sign_out, take_flashes
from shared.auth import AuthError, Permission

router = APIRouter()
Signed = Annotated[Viewer, Depends(current_viewer)]
NOT_AVAILABLE = {404, 405}  # a service without that route (yet): the page says so instead of failing


def _apis(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis


def page(request: Request, name: str, viewer: Viewer | None, *, status: int = 200, **context: Any) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "P": Permission, "flashes": take_flashes(request), **context},
        status_code=status,
    )
    return response


def refused(request: Request, viewer: Viewer, error: ApiError, *, title: str) -> HTMLResponse:
    """A service's refusal or failure, in its own words, with its status."""
    return page(request, "error.html.j2", viewer, status=error.status, title=title, error=error)


def back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


# -- sign-in ----------------------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, host, protocol-relative ``//``, backslash or control character."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    return target


def _signin_page(request: Request, *, next: str, error: str | None, status: int = 200) -> HTMLResponse:
    """The sign-in form with a fresh one-time token kept in the (pre-sign-in) session: a form posted from
    another site has no token, so nobody can sign a browser into their own tenant (login CSRF)."""
    request.session["signin_csrf"] = secrets.token_urlsafe(24)
    return page(
        request, "signin.html.j2", None, status=status, next=next, error=error, csrf=request.session["signin_csrf"]
    )


@router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
async def signin_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _signin_page(request, next=_safe_next(next), error=None)


@router.post("/signin", response_class=HTMLResponse, include_in_schema=False)
async def signin(request: Request) -> Response:
    form = await _form(request)
    target = _safe_next(form.get("next"))
    expected = request.session.pop("signin_csrf", None)
    if not expected or not secrets.compare_digest(str(expected), form.get("csrf", "")):
        return _signin_page(request, next=target, status=400, error="The sign-in form expired; sign in again.")
    api_key = form.get("api_key", "").strip()
    if not api_key:
        return _signin_page(request, next=target, status=422, error="Enter your API key.")
    try:
        issued = await _apis(request).catalog.post("/v1/auth/token", None, {"api_key": api_key})
        viewer = read_token(issued["access_token"], request.app.state.token_verifier)
    except ApiError as exc:
        message = f"Sign-in refused: {exc.message}" if exc.status in (401, 403) else exc.message
        return _signin_page(request, next=target, status=exc.status, error=message)
    except AuthError as exc:
        return _signin_page(request, next=target, status=401, error=f"Sign-in refused: {exc}")
    sign_in(request, viewer)
    return back(target)


@router.post("/signout", include_in_schema=False)
async def signout(request: Request) -> Response:
    sign_out(request)
    return back("/signin")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, viewer: Signed) -> HTMLResponse:
    return page(request, "home.html.j2", viewer, title="Overview")


# -- catalog: services ------------------------------------------------------------------------------------
async def _categories(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await _apis(request).catalog.get("/v1/categories", viewer.token, limit=500))["items"]
    return found


@router.get("/catalog/services", response_class=HTMLResponse, include_in_schema=False)
async def services_list(request: Request, viewer: Signed) -> HTMLResponse:
    try:
        services = (await _apis(request).catalog.get("/v1/services", viewer.token, limit=500))["items"]
        categories = views.names_by_id(await _categories(request, viewer), "category_id")
    except ApiError as exc:
        return refused(request, viewer, exc, title="Services")
    services.sort(key=lambda s: (not s["active"], s["name"].lower()))
    return page(request, "services.html.j2", viewer, title="Services", services=services, categories=categories)


async def _service_form(
    request: Request, viewer: Viewer, *, service: dict[str, Any], error: str | None = None, status: int = 200
) -> HTMLResponse:
    try:
        categories = await _categories(request, viewer)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Services")
    title = "Edit service" if service.get("service_id") else "Add a service"
    return page(
        request,
        "service_form.html.j2",
        viewer,
        status=status,
        title=title,
        service=service,
        categories=categories,
        types=views.SERVICE_TYPES,
        error=error,
    )


@router.get("/catalog/services/new", response_class=HTMLResponse, include_in_schema=False)
async def service_new(request: Request, viewer: Signed) -> HTMLResponse:
    return await _service_form(request, viewer, service={"currency": "GBP", "service_type": "Usage"})


@router.get("/catalog/services/{service_id}/edit", response_class=HTMLResponse, include_in_schema=False)
async def service_edit(request: Request, viewer: Signed, service_id: uuid.UUID) -> HTMLResponse:
    try:
        service = await _apis(request).catalog.get(f"/v1/services/{service_id}", viewer.token)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Edit service")
    return await _service_form(request, viewer, service=service)


async def _save_service(request: Request, viewer: Viewer, service_id: str, *, new: bool) -> Response:
    form = await _form(request)
    catalog = _apis(request).catalog
    try:
        existing = None if new else await catalog.get(f"/v1/services/{service_id}", viewer.token)
        body = views.service_body(form, service_id=service_id, existing=existing)
        await catalog.put(f"/v1/services/{service_id}", viewer.token, body)
    except views.FormProblem as exc:
        shown = {**form, "service_id": None if new else service_id}
        return await _service_form(request, viewer, service=shown, error=str(exc), status=422)
    except ApiError as exc:
        shown = {**form, "service_id": None if new else service_id}
        return await _service_form(request, viewer, service=shown, error=exc.message, status=exc.status)
    flash(request, f"Service {body['code']} {'added' if new else 'saved'}.")
    return back("/catalog/services")


@router.post("/catalog/services/new", include_in_schema=False)
async def service_create(request: Request, viewer: Signed) -> Response:
    return await _save_service(request, viewer, str(uuid.uuid4()), new=True)


@router.post("/catalog/services/{service_id}/edit", include_in_schema=False)
async def service_update(request: Request, viewer: Signed, service_id: uuid.UUID) -> Response:
    return await _save_service(request, viewer, str(service_id), new=False)


@router.post("/catalog/services/{service_id}/{action}", include_in_schema=False)
async def service_retire(request: Request, viewer: Signed, service_id: uuid.UUID, action: str) -> Response:
    """retire / reactivate: the service's `active` flag (rating keeps pricing what was already recorded)."""
    if action not in ("retire", "reactivate"):
        return back("/catalog/services")
    catalog = _apis(request).catalog
    try:
        service = await catalog.get(f"/v1/services/{service_id}", viewer.token)
        body = {k: v for k, v in service.items() if k not in ("tenant_id", "entity_type")}
        await catalog.put(f"/v1/services/{service_id}", viewer.token, body | {"active": action == "reactivate"})
    except ApiError as exc:
        flash(request, f"Could not {action} the service: {exc.message}", kind="error")
        return back("/catalog/services")
    flash(request, f"Service {service['code']} {'retired' if action == 'retire' else 'reactivated'}.")
    return back("/catalog/services")


# -- catalog: categories ----------------------------------------------------------------------------------
@router.get("/catalog/categories", response_class=HTMLResponse, include_in_schema=False)
async def categories_list(request: Request, viewer: Signed) -> HTMLResponse:
    try:
        categories = await _categories(request, viewer)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Service categories")
    categories.sort(key=lambda c: c["name"].lower())
    return page(request, "categories.html.j2", viewer, title="Service categories", categories=categories)


@router.get("/catalog/categories/new", response_class=HTMLResponse, include_in_schema=False)
async def category_new(request: Request, viewer: Signed) -> HTMLResponse:
    return page(request, "category_form.html.j2", viewer, title="Add a category", category={}, error=None)


@router.get("/catalog/categories/{category_id}/edit", response_class=HTMLResponse, include_in_schema=False)
async def category_edit(request: Request, viewer: Signed, category_id: uuid.UUID) -> HTMLResponse:
    try:
        category = await _apis(request).catalog.get(f"/v1/categories/{category_id}", viewer.token)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Edit category")
    return page(request, "category_form.html.j2", viewer, title="Edit category", category=category, error=None)


async def _save_category(request: Request, viewer: Viewer, category_id: str, *, new: bool) -> Response:
    form = await _form(request)
    body = views.category_body(form, category_id=category_id)
    try:
        await _apis(request).catalog.put(f"/v1/categories/{category_id}", viewer.token, body)
    except ApiError as exc:
        shown = body | {"category_id": None if new else category_id}
        title = "Add a category" if new else "Edit category"
        return page(
            request, "category_form.html.j2", viewer, status=exc.status, title=title, category=shown, error=exc.message
        )
    flash(request, f"Category {body['name']} {'added' if new else 'saved'}.")
    return back("/catalog/categories")


@router.post("/catalog/categories/new", include_in_schema=False)
async def category_create(request: Request, viewer: Signed) -> Response:
    return await _save_category(request, viewer, str(uuid.uuid4()), new=True)


@router.post("/catalog/categories/{category_id}/edit", include_in_schema=False)
async def category_update(request: Request, viewer: Signed, category_id: uuid.UUID) -> Response:
    return await _save_category(request, viewer, str(category_id), new=False)


@router.post("/catalog/categories/{category_id}/retire", include_in_schema=False)
async def category_retire(request: Request, viewer: Signed, category_id: uuid.UUID) -> Response:
    """Categories have no active flag: retiring one deletes it, which catalog refuses while services use it."""
    try:
        await _apis(request).catalog.delete(f"/v1/categories/{category_id}", viewer.token)
    except ApiError as exc:
        flash(request, f"Could not retire the category: {exc.message}", kind="error")
        return back("/catalog/categories")
    flash(request, "Category retired.")
    return back("/catalog/categories")


# -- plans and assignments --------------------------------------------------------------------------------
async def _all(request: Request, viewer: Viewer, collection: str, **filters: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await _apis(request).catalog.get(f"/v1/{collection}", viewer.token, limit=500, **filters)
    )["items"]
    return found


@router.get("/plans", response_class=HTMLResponse, include_in_schema=False)
async def plans_list(request: Request, viewer: Signed) -> HTMLResponse:
    try:
        plans = await _all(request, viewer, "plans")
        assignments = await _all(request, viewer, "assignments")
    except ApiError as exc:
        return refused(request, viewer, exc, title="Plans")
    counts: dict[str, int] = {}
    for a in assignments:
        counts[a["plan_id"]] = counts.get(a["plan_id"], 0) + 1
    plans.sort(key=lambda p: p["name"].lower())
    return page(request, "plans.html.j2", viewer, title="Plans", plans=plans, counts=counts)


@router.get("/plans/{plan_id}", response_class=HTMLResponse, include_in_schema=False)
async def plan_detail(request: Request, viewer: Signed, plan_id: uuid.UUID) -> HTMLResponse:
    try:
        plan = await _apis(request).catalog.get(f"/v1/plans/{plan_id}", viewer.token)
        services = views.names_by_id(await _all(request, viewer, "services"), "service_id")
        companies = views.names_by_id(await _all(request, viewer, "companies"), "company_id")
        assignments = await _all(request, viewer, "assignments", plan_id=str(plan_id))
    except ApiError as exc:
        return refused(request, viewer, exc, title="Plan")
    return page(
        request,
        "plan.html.j2",
        viewer,
        title=f"Plan {plan['name']}",
        plan=plan,
        services=services,
        companies=companies,
        assignments=assignments,
    )


@router.get("/assignments", response_class=HTMLResponse, include_in_schema=False)
async def assignments_list(request: Request, viewer: Signed) -> HTMLResponse:
    return await _assignments_page(request, viewer)


async def _assignments_page(
    request: Request, viewer: Viewer, *, error: str | None = None, status: int = 200, form: dict[str, str] | None = None
) -> HTMLResponse:
    try:
        assignments = await _all(request, viewer, "assignments")
        plans = await _all(request, viewer, "plans")
        companies = await _all(request, viewer, "companies")
    except ApiError as exc:
        return refused(request, viewer, exc, title="Client assignments")
    plan_names = views.names_by_id(plans, "plan_id")
    company_names = views.names_by_id(companies, "company_id")
    assignments.sort(key=lambda a: (company_names.get(a["company_id"], ""), a["start_date"]))
    return page(
        request,
        "assignments.html.j2",
        viewer,
        status=status,
        title="Client assignments",
        assignments=assignments,
        plans=sorted(plans, key=lambda p: p["name"].lower()),
        companies=sorted(companies, key=lambda c: c["name"].lower()),
        plan_names=plan_names,
        company_names=company_names,
        error=error,
        form=form or {},
    )


@router.post("/assignments", include_in_schema=False)
async def assignment_create(request: Request, viewer: Signed) -> Response:
    form = await _form(request)
    assignment_id = str(uuid.uuid4())
    try:
        body = views.assignment_body(form, assignment_id=assignment_id)
        await _apis(request).catalog.put(f"/v1/assignments/{assignment_id}", viewer.token, body)
    except views.FormProblem as exc:
        return await _assignments_page(request, viewer, error=str(exc), status=422, form=form)
    except ApiError as exc:
        return await _assignments_page(request, viewer, error=exc.message, status=exc.status, form=form)
    flash(request, "Plan assigned.")
    return back("/assignments")


# -- invoices ---------------------------------------------------------------------------------------------
@router.get("/invoices", response_class=HTMLResponse, include_in_schema=False)
async def invoices_list(
    request: Request, viewer: Signed, status: str | None = None, company_id: str | None = None
) -> HTMLResponse:
    try:
        invoices = await _apis(request).invoicing.get(
            "/v1/invoices", viewer.token, status=status, company_id=company_id, limit=500
        )
        companies = await _all(request, viewer, "companies")
    except ApiError as exc:
        return refused(request, viewer, exc, title="Invoices")
    return page(
        request,
        "invoices.html.j2",
        viewer,
        title="Invoices",
        invoices=invoices,
        companies=sorted(companies, key=lambda c: c["name"].lower()),
        statuses=views.INVOICE_STATUSES,
        chosen={"status": status or "", "company_id": company_id or ""},
    )


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse, include_in_schema=False)
async def invoice_detail(request: Request, viewer: Signed, invoice_id: uuid.UUID) -> HTMLResponse:
    try:
        invoice = await _apis(request).invoicing.get(f"/v1/invoices/{invoice_id}", viewer.token)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Invoice")
    title = f"Invoice {invoice.get('invoice_number') or '(held, unnumbered)'}"
    document = invoice.get("document") or {}
    return page(request, "invoice.html.j2", viewer, title=title, invoice=invoice, document=document)


@router.get("/invoices/{invoice_id}/pdf", include_in_schema=False)
async def invoice_pdf(request: Request, viewer: Signed, invoice_id: uuid.UUID) -> Response:
    try:
        pdf = await _apis(request).invoicing.raw(f"/v1/invoices/{invoice_id}/pdf", viewer.token)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Invoice PDF")
    headers = {"Content-Disposition": pdf.disposition} if pdf.disposition else None
    return Response(pdf.content, media_type=pdf.media_type, headers=headers)


@router.get("/charges/{charge_id}", response_class=HTMLResponse, include_in_schema=False)
async def charge_detail(request: Request, viewer: Signed, charge_id: uuid.UUID) -> HTMLResponse:
    """The drill-down below an invoice line: rating's explanation of one charge and its source records."""
    try:
        found = await _apis(request).rating.get(f"/v1/charges/{charge_id}", viewer.token)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Charge")
    return page(request, "charge.html.j2", viewer, title="Charge", found=found, charge=found["charge"])


# -- approvals --------------------------------------------------------------------------------------------
@router.get("/approvals", response_class=HTMLResponse, include_in_schema=False)
async def approvals_queue(request: Request, viewer: Signed) -> HTMLResponse:
    approvals = _apis(request).approvals
    try:
        if viewer.may(Permission.APPROVALS_DECIDE):
            pending = await approvals.get("/v1/approvals/pending", viewer.token, limit=500)
        else:
            pending = (await approvals.get("/v1/approvals", viewer.token, status="pending", limit=500))["items"]
    except ApiError as exc:
        return refused(request, viewer, exc, title="Approvals")
    return page(request, "approvals.html.j2", viewer, title="Approvals", pending=pending)


@router.post("/approvals/{request_id}/{verb}", include_in_schema=False)
async def approvals_decide(request: Request, viewer: Signed, request_id: uuid.UUID, verb: str) -> Response:
    if verb not in ("approve", "reject"):
        return back("/approvals")
    form = await _form(request)
    body: dict[str, Any] = {"comment": form.get("comment", "").strip() or None}
    if form.get("step", "").isdigit():
        body["step"] = int(form["step"])
    try:
        decided = await _apis(request).approvals.post(f"/v1/approvals/{request_id}/{verb}", viewer.token, body)
    except ApiError as exc:
        flash(request, f"Could not {verb}: {exc.message}", kind="error")
        return back("/approvals")
    done = "Approved" if verb == "approve" else "Rejected"
    flash(request, f"{done}: {decided['summary']} (now {decided['status']}).")
    return back("/approvals")


# -- bucket usage ------------------------------------------------------------------------------------------
@router.get("/buckets", response_class=HTMLResponse, include_in_schema=False)
async def buckets(request: Request, viewer: Signed, company_id: uuid.UUID | None = None) -> HTMLResponse:
    try:
        companies = sorted(await _all(request, viewer, "companies"), key=lambda c: c["name"].lower())
        chosen = (str(company_id) if company_id else None) or (companies[0]["company_id"] if companies else None)
        rows = await _apis(request).rating.get(f"/v1/companies/{chosen}/bucket-usage", viewer.token) if chosen else []
        plans = views.names_by_id(await _all(request, viewer, "plans"), "plan_id")
        assignments = {a["assignment_id"]: plans.get(a["plan_id"], a["plan_id"]) for a in
                       await _all(request, viewer, "assignments", company_id=chosen)} if chosen else {}  # fmt: skip
    except ApiError as exc:
        return refused(request, viewer, exc, title="Bucket usage")
    return page(
        request,
        "buckets.html.j2",
        viewer,
        title="Bucket usage",
        companies=companies,
        chosen=chosen,
        charts=views.bucket_charts(rows),
        plan_of=assignments,
    )


# -- unmapped, held and dead-lettered records -----------------------------------------------------------
@router.get("/records", response_class=HTMLResponse, include_in_schema=False)
async def records(request: Request, viewer: Signed) -> HTMLResponse:
    metering = _apis(request).metering
    try:
        unmapped = (await metering.get("/v1/unmapped", viewer.token))["records"]
        held = (await metering.get("/v1/held", viewer.token))["records"]
        dead = (await metering.get("/v1/dead-letters", viewer.token))["dead_letters"]
    except ApiError as exc:
        return refused(request, viewer, exc, title="Records needing attention")
    try:  # accepted by metering, but rating cannot bill them yet (no plan on their day, …)
        parked: list[dict[str, Any]] | None = (await _apis(request).rating.get("/v1/unrated", viewer.token))["records"]
    except ApiError:
        parked = None  # the role may not read charges: the section says so
    return page(
        request,
        "records.html.j2",
        viewer,
        title="Records needing attention",
        unmapped=unmapped,
        held=held,
        dead=dead,
        parked=parked,
    )


@router.post("/records/unmapped/redrive", include_in_schema=False)
async def redrive_unmapped(request: Request, viewer: Signed) -> Response:
    try:
        result = await _apis(request).metering.post("/v1/unmapped/redrive", viewer.token)
    except ApiError as exc:
        flash(request, f"Re-drive refused: {exc.message}", kind="error")
        return back("/records")
    flash(request, f"Unmapped records decided again: {result['settled']} settled.")
    return back("/records")


@router.post("/records/dead-letters/{dead_letter_id}/redrive", include_in_schema=False)
async def redrive_dead_letter(request: Request, viewer: Signed, dead_letter_id: uuid.UUID) -> Response:
    try:
        result = await _apis(request).metering.post(f"/v1/dead-letters/{dead_letter_id}/redrive", viewer.token)
    except ApiError as exc:
        flash(request, f"Re-drive refused: {exc.message}", kind="error")
        return back("/records")
    outcome = result.get("status", "done") + (f" ({result['state']})" if result.get("state") else "")
    if result.get("reason"):
        outcome += f": {result.get('code') or ''} {result['reason']}".rstrip()
    flash(request, f"Dead letter re-driven: {outcome}.", kind="ok" if result.get("status") == "accepted" else "error")
    return back("/records")


# -- reports ----------------------------------------------------------------------------------------------
REPORTS: dict[str, tuple[str, str]] = {
    "billing": ("invoicing", "/v1/reports/billing"),
    "currency-totals": ("invoicing", "/v1/reports/currency-totals"),
    "ar-aging": ("invoicing", "/v1/reports/ar-aging"),
    "bucket-usage": ("rating", "/v1/reports/bucket-usage"),
}
AUDITED = ("catalog", "metering", "rating", "tax_currency", "invoicing", "approvals", "notification")


async def _report(request: Request, viewer: Viewer, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """{data} or {missing: text} or {error: ApiError}: one report's answer, never failing the page."""
    service, path = REPORTS[name]
    try:
        return {"data": await _apis(request).by_name(service).get(path, viewer.token, **params)}
    except ApiError as exc:
        if exc.status in NOT_AVAILABLE:
            return {"missing": f"report not available ({service} answered {exc.status})"}
        return {"error": exc}


def _today() -> date:
    # The edge picks the default report window from the wall clock; the services never read it for this.
    return datetime.now(UTC).date()


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
async def reports(
    request: Request, viewer: Signed, group_by: str = "client", to: str | None = None, as_of: str | None = None
) -> HTMLResponse:
    window = views.report_window(request.query_params.get("from"), to, as_of, today=_today())
    if group_by not in views.REPORT_GROUPS:
        group_by = "client"
    span = {"from": window.start, "to": window.end}
    asked = {
        "billing": {"group_by": group_by, **span},
        "currency-totals": span,
        "ar-aging": {"as_of": window.as_of},
        "bucket-usage": span,
    }
    found = {name: await _report(request, viewer, name, params) for name, params in asked.items()}
    csv = {name: f"/reports/{name}.csv?{urlencode(params)}" for name, params in asked.items()}
    return page(
        request,
        "reports.html.j2",
        viewer,
        title="Reports",
        found=found,
        csv=csv,
        groups=views.REPORT_GROUPS,
        chosen={"group_by": group_by, "from": window.start, "to": window.end, "as_of": window.as_of},
    )


@router.get("/reports/{name}.csv", include_in_schema=False)
async def report_csv(request: Request, viewer: Signed, name: str) -> Response:
    if name not in REPORTS:
        return page(request, "error.html.j2", viewer, status=404, title="Report", error=None, text="No such report.")
    service, path = REPORTS[name]
    return await _csv(request, viewer, service, path, name)


async def _csv(request: Request, viewer: Viewer, service: str, path: str, name: str) -> Response:
    params = {k: v for k, v in request.query_params.items() if k != "service"} | {"format": "csv"}
    try:
        found = await _apis(request).by_name(service).raw(path, viewer.token, **params)
    except ApiError as exc:
        return refused(request, viewer, exc, title="Report")
    disposition = found.disposition or f'attachment; filename="{name}.csv"'
    return Response(found.content, media_type=found.media_type, headers={"Content-Disposition": disposition})


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
async def audit(
    request: Request,
    viewer: Signed,
    service: str = "all",
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    to: str | None = None,
) -> HTMLResponse:
    """One service's audit trail, or every service's asked in turn (no service reads another's trail)."""
    chosen_services = AUDITED if service not in AUDITED else (service,)
    start = request.query_params.get("from") or None
    params = {"entity_type": entity_type, "entity_id": entity_id, "actor": actor, "from": start, "to": to}
    trails: list[dict[str, Any]] = []
    for name in chosen_services:
        try:
            answer = await _apis(request).by_name(name).get("/v1/audit", viewer.token, limit=200, **params)
            trails.append({"service": name, "data": answer})
        except ApiError as exc:
            missing = exc.status in NOT_AVAILABLE
            trails.append({"service": name, "missing" if missing else "error": exc})
    return page(
        request,
        "audit.html.j2",
        viewer,
        title="Audit trail",
        services=AUDITED,
        chosen={"service": service if service in AUDITED else "all", **{k: v or "" for k, v in params.items()}},
        trails=trails,
        entries=views.merged_audit(trails),
        csv_query=urlencode({k: v for k, v in params.items() if v}),
    )


@router.get("/audit/{service}.csv", include_in_schema=False)
async def audit_csv(request: Request, viewer: Signed, service: str) -> Response:
    if service not in AUDITED:
        return page(request, "error.html.j2", viewer, status=404, title="Audit", error=None, text="No such service.")
    return await _csv(request, viewer, service, "/v1/audit", f"audit-{service}")
