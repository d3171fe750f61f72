"""Who is calling: signed bearer tokens that every service verifies locally, and what each role may do.

Catalog owns users, roles and credentials and is the only holder of the signing key (Ed25519). Every
service holds the public keys (settings ``AUTH_PUBLIC_KEYS``) and checks a token without calling catalog.
The tenant always comes from the token, never from a request body. Token lifetimes are wall-clock
(authentication is edge infrastructure, not billing time).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, HTTPException, Request

from shared.contracts.catalog import Role

ISSUER = "msp-billing/catalog"
AUDIENCE = "msp-billing"


class Permission(StrEnum):
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    USERS_MANAGE = "users:manage"
    CLOCK_ADVANCE = "clock:advance"
    APPROVALS_DECIDE = "approvals:decide"
    APPROVALS_MANAGE = "approvals:manage"  # edit approval rules: admins only, so a manager cannot loosen their own gate
    TAX_MANAGE = "tax:manage"  # tax rates, exemptions, currencies and exchange rates
    TIME_REPORT = "time:report"
    CHARGES_READ = "charges:read"  # rating's charges, their explanation, previews and bucket usage
    USAGE_INGEST = "usage:ingest"  # post usage / time batches over HTTP and re-drive metering's records
    USAGE_READ = "usage:read"  # metering's ingestion status, usage, time, unmapped, held and dead letters
    NOTIFICATIONS_MANAGE = "notifications:manage"  # sender / gateway / webhook settings, templates, anyone's prefs
    NOTIFICATION_PREFERENCES = "notifications:preferences"  # one's own (a contact: their client's) preferences
    INVOICES_READ = "invoices:read"  # read invoices, accounts, previews (not technicians: issue 17)
    INVOICES_MANAGE = "invoices:manage"  # finalize, void, payments, refunds, credit notes (invoicing)
    REPORTS_READ = "reports:read"  # billing, currency, aging and bucket-usage reports (GET /v1/reports/…)
    AUDIT_READ = "audit:read"  # every service's audit trail and its chain verification (GET /v1/audit)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.BILLING_MANAGER: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.CATALOG_WRITE,
            Permission.CLOCK_ADVANCE,
            Permission.APPROVALS_DECIDE,
            Permission.TAX_MANAGE,
            Permission.CHARGES_READ,
            Permission.USAGE_INGEST,
            Permission.USAGE_READ,
            Permission.NOTIFICATIONS_MANAGE,
            Permission.NOTIFICATION_PREFERENCES,
            Permission.INVOICES_READ,
            Permission.INVOICES_MANAGE,
            Permission.REPORTS_READ,
            Permission.AUDIT_READ,
        }
    ),
    Role.APPROVER: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.INVOICES_READ,  # an invoice waiting for approval is theirs to read
            Permission.APPROVALS_DECIDE,
            Permission.USAGE_READ,
            Permission.NOTIFICATION_PREFERENCES,
        }
    ),
    Role.TECHNICIAN: frozenset({Permission.CATALOG_READ, Permission.TIME_REPORT, Permission.NOTIFICATION_PREFERENCES}),
    Role.CLIENT_CONTACT: frozenset({Permission.NOTIFICATION_PREFERENCES}),
    Role.VIEWER: frozenset(
        {
            Permission.CATALOG_READ,
            Permission.INVOICES_READ,
            Permission.CHARGES_READ,
            Permission.USAGE_READ,
            Permission.NOTIFICATION_PREFERENCES,
            Permission.REPORTS_READ,
        }
    ),
}


class AuthError(Exception):
    """A credential that cannot be trusted; the message says why (without echoing secrets)."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    tenant_id: UUID
    role: Role
    company_id: UUID | None = None  # set for client contacts: the client they belong to

    @property
    def actor(self) -> str:
        """How audit rows name this caller."""
        return f"user:{self.user_id}"

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


def may_grant(granter: Role, role: Role) -> bool:
    """Whether someone of role ``granter`` may give a user ``role``: only when they hold every permission it
    grants, so nobody raises anyone, themselves included, above their own role (issue 17)."""
    return GRANTS[role] <= GRANTS[granter]


def generate_key_pair() -> tuple[str, str]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class TokenIssuer:
    def __init__(self, *, private_key_pem: str, key_id: str) -> None:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuthError("the signing key must be an Ed25519 private key")
        self._key = key
        self._kid = key_id

    def issue(self, principal: Principal, *, now: datetime, ttl: timedelta) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(principal.user_id),
            "tenant_id": str(principal.tenant_id),
            "role": principal.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        if principal.company_id is not None:
            claims["company_id"] = str(principal.company_id)
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})


class TokenVerifier:
    def __init__(self, public_keys: dict[str, str]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for kid, pem in public_keys.items():
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise AuthError(f"public key {kid!r} is not an Ed25519 key")
            self._keys[kid] = key

    @classmethod
    def from_setting(cls, value: str) -> TokenVerifier:
        """``AUTH_PUBLIC_KEYS`` is a JSON object of key id to public PEM (several during a rotation)."""
        return cls(json.loads(value) if value else {})

    def verify(self, token: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(str(kid))
            if key is None:
                raise AuthError("the token was signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "tenant_id", "role"]},
            )
            tenant_id = UUID(claims["tenant_id"])
            if tenant_id.int == 0:  # the nil tenant keeps records no tenant could be read from: nobody's
                raise AuthError("the token names the nil tenant, which no user belongs to")
            return Principal(
                user_id=UUID(claims["sub"]),
                tenant_id=tenant_id,
                role=Role(claims["role"]),
                company_id=UUID(claims["company_id"]) if claims.get("company_id") else None,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the token has expired") from exc
        except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
            raise AuthError(f"the token is not valid: {exc}") from exc


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status_code=401,
            detail="missing bearer token (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


Standing = Callable[[Principal], Awaitable[str | None]]
"""The port that says why a verified token no longer speaks for its user (demoted, moved, deactivated), or None;
a service binds it as ``app.state.principal_standing`` (shared/principals.py). Without it the signature alone
decides (apps assembled in tests)."""


async def current_principal(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(_bearer(request))
    except AuthError as exc:
        raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    standing: Standing | None = getattr(request.app.state, "principal_standing", None)
    if standing is not None and (reason := await standing(principal)) is not None:
        raise HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})
    return principal


def requires(permission: Permission) -> Callable[..., Principal]:
    """A FastAPI dependency: the verified caller, if their role grants ``permission`` (else 403)."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.may(permission):
            raise HTTPException(status_code=403, detail=f"role {principal.role.value!r} may not {permission.value}")
        return principal

    return dependency


def requires_any(*permissions: Permission) -> Callable[..., Principal]:
    """Like `requires`, for a route any one of several permissions opens (e.g. time entries: a PSA
    integration's ``usage:ingest`` or a technician's ``time:report``)."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not any(principal.may(p) for p in permissions):
            wanted = " or ".join(p.value for p in permissions)
            raise HTTPException(status_code=403, detail=f"role {principal.role.value!r} may not {wanted}")
        return principal

    return dependency
