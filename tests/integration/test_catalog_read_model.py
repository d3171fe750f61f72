"""Catalog events are enough to keep a read model: one built in the test by consuming ``catalog.events.v1`` ends
identical to what the catalog API lists, after creates, updates and deletes, and again when rebuilt from nothing
but a full re-publish.

The read model follows the contract (shared/contracts/catalog.py): per (entity_type, entity_id) it keeps the state
of the highest version seen; an event with ``deleted: true`` removes the entity (its version is remembered, so an
older event arriving late cannot bring it back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.integration.test_catalog_api import (
    COLLECTIONS,
    ENTITY_TYPE,
    ID_FIELD,
    assignment_body,
    company_body,
    everything,
    only,
    path_of,
    plan_body,
    saved,
    service_body,
    user_body,
)
from tests.support.platform import Platform, Tenant

TOPIC = "catalog.events.v1"
SANDBOX_EVENTS = 6  # `Platform.sandbox_tenant`: the tenant, its admin, a client, a service, a plan, an assignment
Key = tuple[str, str]


@dataclass(frozen=True)
class Entry:
    version: int
    deleted: bool
    state: dict[str, Any]


class ReadModel:
    """What a consumer of catalog events keeps: the newest state of every entity, deletions as tombstones."""

    def __init__(self, events: Iterable[dict[str, Any]] = ()) -> None:
        self.entries: dict[Key, Entry] = {}
        for event in events:
            self.apply(event)

    def apply(self, event: dict[str, Any]) -> None:
        key = (event["entity_type"], event["entity_id"])
        held = self.entries.get(key)
        if held is None or event["version"] >= held.version:
            self.entries[key] = Entry(event["version"], event["deleted"], event["state"])

    def live(self) -> dict[Key, dict[str, Any]]:
        """The catalog entities that exist (the tenant itself is not one the entity API lists)."""
        return {k: e.state for k, e in self.entries.items() if not e.deleted and k[0] != "tenant"}

    def deleted(self) -> set[Key]:
        return {k for k, e in self.entries.items() if e.deleted}


async def catalog_as_listed(platform: Platform, tenant: Tenant) -> dict[Key, dict[str, Any]]:
    """Every entity the API lists for the tenant, all kinds, all pages."""
    return {
        (ENTITY_TYPE[collection], item[ID_FIELD[collection]]): item
        for collection in COLLECTIONS
        for item in await everything(platform, tenant, collection)
    }


async def events_of(
    platform: Platform, tenant: Tenant, *, count: int, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The tenant's catalog events in the order the topic gives them (from the beginning), optionally only
    those that occurred at or after ``since``; waits until ``count`` arrived (and a moment longer)."""

    def wanted(event: dict[str, Any]) -> bool:
        return event["tenant_id"] == str(tenant.tenant_id) and (
            since is None or datetime.fromisoformat(event["occurred_at"]) >= since
        )

    events = await platform.messages(TOPIC, where=wanted, count=count, settle_s=1.0)
    assert len(events) >= count, f"only {len(events)} of {count} catalog events arrived"
    return events


@dataclass
class Changes:
    """A tenant's catalog after a round of creates, updates and deletes; ``events`` counts what they published."""

    events: int
    deleted: set[Key]


async def create_update_and_delete(platform: Platform, tenant: Tenant) -> Changes:
    published = 0

    async def put(collection: str, body: dict[str, Any]) -> None:
        nonlocal published
        published += 1 if (await saved(platform, tenant, collection, body))["changed"] else 0

    async def delete(collection: str, body: dict[str, Any]) -> Key:
        nonlocal published
        response = await platform.catalog.delete(path_of(collection, body), headers=tenant.auth)
        assert response.status_code == 200, response.text
        published += 1
        return ENTITY_TYPE[collection], body[ID_FIELD[collection]]

    # create
    backup, spare = service_body(), service_body(service_type="Fixed")
    globex, sam, former = company_body(), user_body(), user_body(role="viewer")
    bundle = plan_body(backup["service_id"])
    held = assignment_body(globex["company_id"], bundle["plan_id"])
    for collection, body in [
        ("services", backup),
        ("services", spare),
        ("companies", globex),
        ("plans", bundle),
        ("assignments", held),
        ("users", sam),
        ("users", former),
    ]:
        await put(collection, body)
    # update (and one put that changes nothing)
    await put("services", backup | {"default_rate": "3.50"})
    await put("services", backup | {"default_rate": "3.60", "name": "Backup"})
    await put("companies", globex | {"name": "Globex Corporation"})
    await put("users", sam | {"role": "approver"})
    await put("assignments", held | {"end_date": "2026-07-01"})
    await put("plans", bundle)
    managed = await only(platform, tenant, "services", code="managed-device")
    await put("services", managed | {"active": False})
    # delete
    gone = {await delete("services", spare), await delete("users", former)}
    return Changes(events=published, deleted=gone)


class TestAReadModelFedByCatalogEvents:
    async def test_ends_identical_to_the_catalog_after_creates_updates_and_deletes(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        changes = await create_update_and_delete(platform, tenant)

        model = ReadModel(await events_of(platform, tenant, count=SANDBOX_EVENTS + changes.events))

        assert model.live() == await catalog_as_listed(platform, tenant)
        assert model.deleted() == changes.deleted
        assert model.entries[("tenant", str(tenant.tenant_id))].state == {
            "entity_type": "tenant",
            "tenant_id": str(tenant.tenant_id),
            "name": "Northwind IT",
            "mode": "sandbox",
            "timezone": "Europe/London",
            "base_currency": tenant.currency,
        }

    async def test_rebuilt_from_only_a_full_republish_ends_identical_again_deletions_included(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        changes = await create_update_and_delete(platform, tenant)
        current = ReadModel(await events_of(platform, tenant, count=SANDBOX_EVENTS + changes.events))
        before = datetime.now(UTC)

        response = await platform.catalog.post("/v1/catalog/republish", headers=tenant.auth)

        assert response.status_code == 200, response.text
        entities = response.json()["entities"]
        assert entities == len(current.entries)
        republished = await events_of(platform, tenant, count=entities, since=before)
        assert len(republished) == entities
        assert len({e["occurred_at"] for e in republished}) == 1
        rebuilt = ReadModel(republished)
        assert rebuilt.live() == await catalog_as_listed(platform, tenant)
        assert rebuilt.deleted() == changes.deleted
        assert rebuilt.entries == current.entries

    async def test_a_current_read_model_is_unchanged_by_a_republish(self, platform: Platform, tenant: Tenant) -> None:
        changes = await create_update_and_delete(platform, tenant)
        current = ReadModel(await events_of(platform, tenant, count=SANDBOX_EVENTS + changes.events))
        entities = (await platform.catalog.post("/v1/catalog/republish", headers=tenant.auth)).json()["entities"]

        after = ReadModel(await events_of(platform, tenant, count=SANDBOX_EVENTS + changes.events + entities))

        assert after.entries == current.entries
