"""Tokens and API keys: signed by catalog, verified anywhere, secrets never stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.catalog.domain.credentials import (
    MalformedApiKey,
    hash_secret,
    new_api_key,
    parse_api_key,
    secret_matches,
)
from shared.auth import GRANTS, AuthError, Permission, Principal, TokenIssuer, TokenVerifier, generate_key_pair
from shared.contracts.catalog import Role

PRIVATE, PUBLIC = generate_key_pair()


def now() -> datetime:
    # Read when each test runs: tokens carry wall-clock expiry, and a long session outlives a module-level time.
    return datetime.now(UTC)


def principal(role: Role = Role.BILLING_MANAGER) -> Principal:
    return Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=role)


class TestTokens:
    def test_a_token_round_trips_its_user_tenant_and_role(self) -> None:
        who = principal()
        token = TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(who, now=now(), ttl=timedelta(minutes=5))

        assert TokenVerifier({"k1": PUBLIC}).verify(token) == who

    def test_an_expired_token_is_refused(self) -> None:
        token = TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(
            principal(), now=now() - timedelta(hours=2), ttl=timedelta(minutes=5)
        )

        with pytest.raises(AuthError, match="expired"):
            TokenVerifier({"k1": PUBLIC}).verify(token)

    def test_a_token_from_an_unknown_key_is_refused(self) -> None:
        token = TokenIssuer(private_key_pem=PRIVATE, key_id="k9").issue(
            principal(), now=now(), ttl=timedelta(minutes=5)
        )

        with pytest.raises(AuthError, match="unknown key"):
            TokenVerifier({"k1": PUBLIC}).verify(token)

    def test_a_tampered_token_is_refused(self) -> None:
        token = TokenIssuer(private_key_pem=PRIVATE, key_id="k1").issue(
            principal(), now=now(), ttl=timedelta(minutes=5)
        )
        head, body, signature = token.split(".")

        with pytest.raises(AuthError):
            TokenVerifier({"k1": PUBLIC}).verify(f"{head}.{body}x.{signature}")

    def test_verification_during_a_key_rotation_accepts_both_keys(self) -> None:
        new_private, new_public = generate_key_pair()
        verifier = TokenVerifier({"old": PUBLIC, "new": new_public})
        old = TokenIssuer(private_key_pem=PRIVATE, key_id="old").issue(principal(), now=now(), ttl=timedelta(minutes=5))
        new = TokenIssuer(private_key_pem=new_private, key_id="new").issue(
            principal(), now=now(), ttl=timedelta(minutes=5)
        )

        assert verifier.verify(old).role == verifier.verify(new).role == Role.BILLING_MANAGER


class TestRoles:
    @pytest.mark.parametrize(
        ("role", "permission", "allowed"),
        [
            (Role.ADMIN, Permission.USERS_MANAGE, True),
            (Role.BILLING_MANAGER, Permission.CATALOG_WRITE, True),
            (Role.BILLING_MANAGER, Permission.USERS_MANAGE, False),
            (Role.BILLING_MANAGER, Permission.APPROVALS_MANAGE, False),
            (Role.BILLING_MANAGER, Permission.TAX_MANAGE, True),
            (Role.ADMIN, Permission.APPROVALS_MANAGE, True),
            (Role.APPROVER, Permission.APPROVALS_DECIDE, True),
            (Role.APPROVER, Permission.CATALOG_WRITE, False),
            (Role.TECHNICIAN, Permission.TIME_REPORT, True),
            (Role.VIEWER, Permission.CATALOG_READ, True),
            (Role.VIEWER, Permission.CATALOG_WRITE, False),
            (Role.CLIENT_CONTACT, Permission.CATALOG_READ, False),
            (Role.ADMIN, Permission.USAGE_INGEST, True),
            (Role.BILLING_MANAGER, Permission.USAGE_INGEST, True),
            (Role.BILLING_MANAGER, Permission.USAGE_READ, True),
            (Role.TECHNICIAN, Permission.USAGE_INGEST, False),
            (Role.VIEWER, Permission.USAGE_INGEST, False),
            (Role.VIEWER, Permission.USAGE_READ, True),
            (Role.CLIENT_CONTACT, Permission.USAGE_READ, False),
            (Role.ADMIN, Permission.REPORTS_READ, True),
            (Role.BILLING_MANAGER, Permission.REPORTS_READ, True),
            (Role.VIEWER, Permission.REPORTS_READ, True),
            (Role.APPROVER, Permission.REPORTS_READ, False),
            (Role.TECHNICIAN, Permission.REPORTS_READ, False),
            (Role.CLIENT_CONTACT, Permission.REPORTS_READ, False),
            (Role.ADMIN, Permission.AUDIT_READ, True),
            (Role.BILLING_MANAGER, Permission.AUDIT_READ, True),
            (Role.VIEWER, Permission.AUDIT_READ, False),
            (Role.APPROVER, Permission.AUDIT_READ, False),
            (Role.CLIENT_CONTACT, Permission.AUDIT_READ, False),
        ],
    )
    def test_each_role_grants_what_the_table_says(self, role: Role, permission: Permission, allowed: bool) -> None:
        assert principal(role).may(permission) is allowed

    def test_every_role_has_a_row_in_the_table(self) -> None:
        assert set(GRANTS) == set(Role)


class TestApiKeys:
    def test_a_key_parses_back_to_its_tenant_id_and_secret(self) -> None:
        key = new_api_key(tenant_id=uuid.uuid4(), key_id=uuid.uuid4())

        assert parse_api_key(str(key)) == key

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "msp",
            "msp_x_y_z",
            f"abc_{uuid.uuid4().hex}_{uuid.uuid4().hex}_s",
            f"msp_{uuid.uuid4().hex}_{uuid.uuid4().hex}_",
        ],
    )
    def test_a_malformed_key_is_refused(self, text: str) -> None:
        with pytest.raises(MalformedApiKey):
            parse_api_key(text)

    def test_only_the_right_secret_matches_its_stored_hash(self) -> None:
        stored = hash_secret("s3cret")

        assert secret_matches("s3cret", stored)
        assert not secret_matches("s3cret!", stored)
        assert "s3cret" not in stored

    def test_the_same_secret_hashes_differently_each_time(self) -> None:
        assert hash_secret("same") != hash_secret("same")


def test_a_token_naming_the_nil_tenant_is_refused() -> None:
    # issue 17: the nil tenant keeps the records no tenant could be read from; no user may act for it
    nobody = Principal(user_id=uuid.uuid4(), tenant_id=uuid.UUID(int=0), role=Role.ADMIN)
    token = TokenIssuer(private_key_pem=PRIVATE, key_id="k").issue(nobody, now=now(), ttl=timedelta(minutes=5))
    with pytest.raises(AuthError, match="nil tenant"):
        TokenVerifier({"k": PUBLIC}).verify(token)
