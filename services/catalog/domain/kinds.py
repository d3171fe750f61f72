"""The catalog's entity kinds, declared once: the API routes, the store, the events and the loader all
follow this table. Adding a kind is one entry here plus its contract model (and its rules, if any)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.auth import Permission
from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    CategoryState,
    ClientStatusState,
    CompanyState,
    DiscountState,
    PlanState,
    ServiceState,
    UserState,
)


@dataclass(frozen=True, slots=True)
class Kind:
    collection: str  # the URL segment and the loader's key: "companies"
    entity_type: str  # the event's entity_type: "company"
    model: type[Any]  # the contract model of its state
    id_field: str  # "company_id"
    write: Permission = Permission.CATALOG_WRITE
    unique: tuple[str, ...] = ()  # top-level fields unique per tenant (backed by an index)
    writable: bool = True  # False: no PUT / DELETE route and not loadable; written by its own use case
    derived: tuple[str, ...] = ()  # fields the catalog sets: not in the PUT body (a value sent is ignored)

    def entity_id(self, state: Any) -> Any:
        return getattr(state, self.id_field)


# In dependency order (the loader saves in this order): a kind only refers to kinds above it.
KINDS: tuple[Kind, ...] = (
    Kind("users", "user", UserState, "user_id", write=Permission.USERS_MANAGE, unique=("email",)),
    Kind("companies", "company", CompanyState, "company_id", unique=("company_ref",)),
    Kind("categories", "category", CategoryState, "category_id"),
    Kind("services", "service", ServiceState, "service_id", unique=("code",)),
    Kind("bundles", "bundle", BundleState, "bundle_id"),
    Kind("plans", "plan", PlanState, "plan_id"),
    Kind("assignments", "assignment", AssignmentState, "assignment_id"),
    Kind(
        "discounts",
        "discount",
        DiscountState,
        "discount_id",
        derived=("approval_status", "approval_request_id"),
    ),
    Kind("client-statuses", "client_status", ClientStatusState, "company_id", writable=False),
)

BY_COLLECTION = {k.collection: k for k in KINDS}
LOADABLE = tuple(k for k in KINDS if k.writable)
BY_TYPE = {k.entity_type: k for k in KINDS}


class UnknownKind(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown catalog collection {name!r}; known: {', '.join(BY_COLLECTION)}")


def kind_of(state: Any) -> Kind:
    try:
        return BY_TYPE[state.entity_type]
    except KeyError as exc:
        raise UnknownKind(state.entity_type) from exc
