"""Who is signed in. The platform's credential is an API key; catalog exchanges it for a short-lived bearer
token (POST /v1/auth/token). The token lives in the session cookie, which Starlette's SessionMiddleware signs
with itsdangerous and sends HttpOnly and SameSite=strict (Secure where `cookie_secure`). The role shown in the
page comes from the token, verified with the platform's public keys; it only decides which actions the pages
offer — every service checks the token itself on every call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt
from fastapi import Request

from shared.auth import GRANTS, AuthError, Permission, TokenVerifier
from shared.contracts.catalog import Role


class SignInRequired(Exception):
    """No (or an expired) sign-in: the page redirects to the sign-in form."""


@dataclass(frozen=True, slots=True)
class Viewer:
    token: str
    user_id: UUID
    tenant_id: UUID
    role: Role
    expires_at: int

    def may(self, permission: Permission | str) -> bool:
        return Permission(permission) in GRANTS[self.role]

    @property
    def permissions(self) -> frozenset[Permission]:
        return GRANTS[self.role]


def read_token(token: str, verifier: TokenVerifier | None) -> Viewer:
    """The signed-in user's identity from their token: verified when public keys are configured."""
    if verifier is not None:
        principal = verifier.verify(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return Viewer(token, principal.user_id, principal.tenant_id, principal.role, int(claims["exp"]))
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return Viewer(token, UUID(claims["sub"]), UUID(claims["tenant_id"]), Role(claims["role"]), int(claims["exp"]))
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise AuthError(f"the token is not valid: {exc}") from exc


def sign_in(request: Request, viewer: Viewer) -> None:
    request.session.clear()
    request.session["token"] = viewer.token


def sign_out(request: Request) -> None:
    request.session.clear()


def current_viewer(request: Request) -> Viewer:
    """A FastAPI dependency: the signed-in user, or SignInRequired (the app redirects to /signin)."""
    token = request.session.get("token")
    if not token:
        raise SignInRequired
    verifier: TokenVerifier | None = request.app.state.token_verifier
    try:
        viewer = read_token(str(token), verifier)
    except AuthError as exc:
        request.session.clear()
        raise SignInRequired from exc
    if viewer.expires_at <= time.time():
        request.session.clear()
        raise SignInRequired
    return viewer


def flash(request: Request, message: str, *, kind: str = "ok") -> None:
    """A message shown once on the next page (after a POST → redirect)."""
    messages: list[dict[str, str]] = request.session.setdefault("flash", [])
    messages.append({"kind": kind, "text": message})
    request.session["flash"] = messages


def take_flashes(request: Request) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = request.session.pop("flash", [])
    return messages
