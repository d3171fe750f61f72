"""Whether a signed token still speaks for its user: the user's role, client and activity as catalog last
published them, against what the token says (issue 17: a demoted or removed user's token used to work until
it expired).

Tokens stay stateless to verify (shared/auth.py); this adds one indexed look-up per request. Every service
keeps the kernel table ``principals`` from its catalog subscription (`remember`), and the runtime binds
`standing` as the app's ``principal_standing`` port, which `shared.auth.current_principal` consults after
the signature. A user the service has not heard of yet keeps the token's word (catalog signed it moments
ago); catalog itself answers from the users it owns, so its routes (keys, users, roles) see a change at once,
the other services once the catalog event has reached them (normally well under a second).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from shared.auth import Principal
from shared.contracts.catalog import CatalogEvent, Role, UserState
from shared.db.pool import DbConnection


@dataclass(frozen=True, slots=True)
class Standing:
    """The user as the service knows them now."""

    role: str
    company_id: UUID | None
    active: bool


def judge(principal: Principal, now: Standing | None) -> str | None:
    """Why the token no longer stands for its user, or None when it does (pure)."""
    if now is None:
        return None
    if not now.active:
        return "the token's user has been deactivated or removed since it was issued"
    if now.role != principal.role.value:
        return (
            f"the token's user is now {Role(now.role).value!r}, not {principal.role.value!r}: "
            "exchange the API key for a new token"
        )
    if now.company_id != principal.company_id:
        return "the token's user belongs to another client since it was issued: exchange the API key again"
    return None


async def standing(pool: asyncpg.Pool, principal: Principal) -> str | None:
    """The port bound at composition: why ``principal``'s token is refused, or None."""
    row = await pool.fetchrow("SELECT * FROM principal_standing($1, $2)", principal.tenant_id, principal.user_id)
    return judge(principal, None if row is None else Standing(row["role"], row["company_id"], row["active"]))


async def remember(conn: DbConnection, events: Iterable[CatalogEvent]) -> None:
    """Keep the users of a batch of catalog events (newer versions win; a deleted user is inactive). Runs in
    the consumer's transaction; the rows are written under each event's own tenant."""
    latest: dict[tuple[UUID, UUID], CatalogEvent] = {}
    for e in events:  # one row per user: a statement may not update the same row twice
        if isinstance(e.state, UserState):
            key = (e.tenant_id, e.entity_id)
            if key not in latest or latest[key].version < e.version:
                latest[key] = e
    users = list(latest.values())
    if not users:
        return
    await conn.execute(
        """
        INSERT INTO principals (tenant_id, user_id, role, company_id, active, version)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::boolean[], $6::integer[])
        ON CONFLICT (tenant_id, user_id) DO UPDATE
           SET role = EXCLUDED.role, company_id = EXCLUDED.company_id, active = EXCLUDED.active,
               version = EXCLUDED.version
         WHERE principals.version < EXCLUDED.version
        """,
        [e.tenant_id for e in users],
        [e.entity_id for e in users],
        [e.state.role.value for e in users],  # type: ignore[union-attr]
        [e.state.company_id for e in users],  # type: ignore[union-attr]
        [e.state.active and not e.deleted for e in users],  # type: ignore[union-attr]
        [e.version for e in users],
    )
