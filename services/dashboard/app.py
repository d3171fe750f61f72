"""The dashboard's composition root: the services' API clients, the signed session cookie, templates, static
files and the pages. No database, no broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from services.dashboard import handlers, views
from services.dashboard.adapters.api import Apis, TokenRefused
from services.dashboard.session import SignInRequired
from services.dashboard.settings import DashboardSettings
from shared.auth import TokenVerifier

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "msp_dashboard"
# No inline script or style anywhere: everything comes from /static, and no one may frame the pages.
CSP = "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def _same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from the dashboard's own pages: its Origin (or, without one, its
    Referer) names this host. A request with neither (a command-line client, an old browser) is let through:
    SameSite=strict already keeps other sites' forms from carrying the session."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    host = request.headers.get("host", "")
    return urlsplit(source).netloc == host


def create_app(settings: DashboardSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """``transport``: how the services are reached (the network unless a test answers for them)."""
    apis = Apis(settings.service_urls(), timeout_s=settings.api_timeout_s, transport=transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await apis.close()

    app = FastAPI(title="MSP billing dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    # The cookie holds the user's bearer token: signed (itsdangerous), HttpOnly (Starlette always sets it),
    # SameSite=strict, so no other site can make the browser send it with a form POST — that is the CSRF
    # defence for the POST-only state changes.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="strict",
        https_only=settings.cookie_secure,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html templates
    templates.env.autoescape = True
    templates.env.globals.update(column_label=views.column_label, is_number=views.is_number)
    app.state.templates = templates
    app.state.apis = apis
    keys = settings.auth_public_keys
    app.state.token_verifier = TokenVerifier.from_setting(keys) if keys else None
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        where = f"/signin?next={quote(target, safe='/')}" if request.method == "GET" else "/signin"
        return RedirectResponse(where, status_code=303)

    @app.exception_handler(TokenRefused)
    async def _token_refused(request: Request, exc: TokenRefused) -> Response:
        request.session.clear()  # the role shown would be stale too: sign in again
        return await _sign_in(request, SignInRequired())

    @app.get("/health/live", include_in_schema=False)
    async def live() -> JSONResponse:
        return JSONResponse({"status": "live"})

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        return JSONResponse({"status": "ready"})

    @app.middleware("http")
    async def _headers(request: Request, call_next: object) -> Response:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request):
            # a second CSRF defence beside SameSite=strict (issue 17): a browser's cross-site POST says where
            # it comes from; one that names another origin changes nothing
            return JSONResponse({"detail": "cross-origin form posts are refused"}, status_code=403)
        response: Response = await call_next(request)  # type: ignore[operator]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    app.include_router(handlers.router)
    return app
