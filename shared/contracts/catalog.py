"""Catalog change events (``catalog.events.v1``): state-carrying, keyed by entity.

Every message carries the entity's whole current state, so a consumer keeps a local read model by
upserting ``state`` when ``version`` is newer than what it has (and deleting on ``deleted``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Discriminator, Field, Tag, model_validator

from shared.contracts.base import Contract, CurrencyCode, DecimalStr, NonNegativeDecimalStr, Timestamp
from shared.periods import BillingFrequency

TENANT_EXAMPLE = "0b6f3c52-4a8e-4f5e-9a57-1c2d3e4f5a6b"
ID_EXAMPLE = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


class TenantMode(StrEnum):
    LIVE = "live"
    SANDBOX = "sandbox"


class ServiceType(StrEnum):
    FIXED = "Fixed"
    TIME = "Time"
    USAGE = "Usage"


class SnapshotAggregation(StrEnum):
    """How a Usage service's snapshot quantities (e.g. devices seen) become a period's billable quantity."""

    PEAK = "peak"
    TIME_WEIGHTED_AVERAGE = "time_weighted_average"
    LAST = "last"


class PlanType(StrEnum):
    FIXED = "fixed"
    TIME_BASED = "time-based"
    USAGE_BASED = "usage-based"
    BUCKET = "bucket"
    HYBRID = "hybrid"


class BillingTiming(StrEnum):
    """Whether a plan's fixed charges are billed at the start of their period or after it."""

    ADVANCE = "advance"
    ARREARS = "arrears"


class PricingModel(StrEnum):
    PER_UNIT = "per_unit"
    GRADUATED = "graduated"
    VOLUME = "volume"
    PACKAGE = "package"


class RolloverPolicy(StrEnum):
    NONE = "none"
    CARRY_UP_TO = "carry_up_to"
    EXPIRE_AFTER = "expire_after"


class TenantState(Contract):
    entity_type: Literal["tenant"] = Field(default="tenant", description="Discriminator", examples=["tenant"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    name: str = Field(description="The MSP's name", examples=["Northwind IT"])
    mode: TenantMode = Field(description="live, or sandbox (may run on a test clock)", examples=["sandbox"])
    timezone: str = Field(description="IANA time zone billing periods are cut in", examples=["Europe/London"])
    base_currency: CurrencyCode = Field(description="Currency reports convert to", examples=["GBP"])


class ExternalRef(Contract):
    source: str = Field(description="The upstream tool", examples=["ninjaone"])
    ref: str = Field(description="The client's id in that tool", examples=["acme-001"])


class CompanyState(Contract):
    entity_type: Literal["company"] = Field(default="company", description="Discriminator", examples=["company"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client", examples=[ID_EXAMPLE])
    company_ref: str = Field(description="The client's primary reference (message keys use it)", examples=["acme"])
    refs: list[ExternalRef] = Field(
        default_factory=list,
        description="References upstream tools use",
        examples=[[{"source": "ninjaone", "ref": "acme-001"}]],
    )
    name: str = Field(description="Client name", examples=["Acme Dental"])
    billing_email: str | None = Field(default=None, description="Where invoices go", examples=["ap@acme.example"])
    region: str = Field(description="Country and optional subdivision, ISO 3166", examples=["GB", "US-NY"])
    tax_id: str | None = Field(default=None, description="Client's tax id", examples=["GB123456789"])
    currency: CurrencyCode = Field(description="Preferred invoice currency", examples=["GBP"])
    payment_terms_days: int = Field(default=30, ge=0, description="Days from issue to due", examples=[30])
    billing_anchor: date = Field(description="Day billing cycles are anchored on", examples=["2026-01-01"])


class ServiceState(Contract):
    entity_type: Literal["service"] = Field(default="service", description="Discriminator", examples=["service"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    service_id: UUID = Field(description="The service", examples=[ID_EXAMPLE])
    code: str = Field(description="Unique per tenant; the service_ref upstream tools send", examples=["managed-device"])
    name: str = Field(description="Display name", examples=["Managed device"])
    service_type: ServiceType = Field(description="Fixed, Time or Usage", examples=["Usage"])
    default_rate: DecimalStr = Field(description="Default price per unit", examples=["12.50"])
    currency: CurrencyCode = Field(description="Currency of the default rate", examples=["GBP"])
    unit: str = Field(description="Unit of measure", examples=["device"])
    active: bool = Field(default=True, description="False once retired", examples=[True])
    category_id: UUID | None = Field(
        default=None, description="The service category it is listed under (must exist)", examples=[ID_EXAMPLE]
    )
    tax_category: str | None = Field(
        default=None,
        description="Tax category tax-currency looks rates up by (tax-currency owns the rates)",
        examples=["standard", "exempt-services"],
    )
    snapshot_aggregation: SnapshotAggregation | None = Field(
        default=None,
        description="Usage services only: how snapshot quantities become the billable quantity of a period "
        "(peak, time_weighted_average or last; peak when not given). Null for Fixed and Time services",
        examples=["peak"],
    )
    requires: list[UUID] = Field(
        default_factory=list,
        description="Prerequisite services: a plan with this service gets them added (no cycles, not itself)",
        examples=[[ID_EXAMPLE]],
    )

    @model_validator(mode="before")
    @classmethod
    def _usage_aggregates_at_peak_by_default(cls, data: Any) -> Any:
        usage = isinstance(data, dict) and data.get("service_type") == ServiceType.USAGE
        if usage and data.get("snapshot_aggregation") is None:
            return {**data, "snapshot_aggregation": SnapshotAggregation.PEAK}
        return data


class CategoryState(Contract):
    entity_type: Literal["category"] = Field(default="category", description="Discriminator", examples=["category"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    category_id: UUID = Field(description="The service category", examples=[ID_EXAMPLE])
    name: str = Field(min_length=1, description="Category name", examples=["Managed endpoints"])
    description: str | None = Field(
        default=None, description="What the category groups", examples=["Per-device monitoring and patching"]
    )


# -- pricing models: named strategies, one per `model` (rating prices each with its own module) ----------
# Structural rules (tiers ascending, exactly the last unbounded, non-negative prices, package_size > 0)
# are the catalog's rules (services/catalog/domain/pricing_rules.py), so a refusal names the exact path
# (lines.0.pricing.tiers.2.up_to) rather than the union member pydantic would put in it.


class PerUnitPricing(Contract):
    model: Literal["per_unit"] = Field(description="Discriminator: one price per unit", examples=["per_unit"])
    unit_price: DecimalStr = Field(description="Price of each unit (>= 0)", examples=["12.50"])


class Tier(Contract):
    up_to: DecimalStr | None = Field(
        description="Upper bound of the tier's quantity, inclusive; null for the last (unbounded) tier",
        examples=["10", None],
    )
    unit_price: DecimalStr = Field(description="Price per unit within this tier (>= 0)", examples=["12.50"])
    flat_fee: DecimalStr | None = Field(
        default=None, description="Fixed amount added once when quantity reaches this tier (>= 0)", examples=["5.00"]
    )


_TIERS_EXAMPLE = [[{"up_to": "10", "unit_price": "12.50"}, {"up_to": None, "unit_price": "10.00"}]]


class GraduatedPricing(Contract):
    model: Literal["graduated"] = Field(
        description="Discriminator: each tier prices the units that fall into it", examples=["graduated"]
    )
    tiers: list[Tier] = Field(
        description="Tiers by ascending up_to; only the last is unbounded", examples=_TIERS_EXAMPLE
    )


class VolumePricing(Contract):
    model: Literal["volume"] = Field(
        description="Discriminator: the tier the whole quantity reaches prices every unit", examples=["volume"]
    )
    tiers: list[Tier] = Field(
        description="Tiers by ascending up_to; only the last is unbounded", examples=_TIERS_EXAMPLE
    )


class PackagePricing(Contract):
    model: Literal["package"] = Field(
        description="Discriminator: units are sold in whole packages", examples=["package"]
    )
    package_size: DecimalStr = Field(description="Units per package (> 0)", examples=["10"])
    package_price: DecimalStr = Field(
        description="Price of one package, partial ones rounded up (>= 0)", examples=["99.00"]
    )


Pricing = Annotated[
    PerUnitPricing | GraduatedPricing | VolumePricing | PackagePricing,
    Field(discriminator="model"),
]
"""A pricing model, chosen by its ``model`` name."""


class PriceTerms(Contract):
    """How a plan line prices: a flat ``custom_rate`` override, or a ``pricing`` model (not both); with
    neither, the service's default rate applies."""

    custom_rate: DecimalStr | None = Field(
        default=None, description="Flat price per unit, overriding the service's default rate", examples=["10.00"]
    )
    pricing: Pricing | None = Field(
        default=None,
        description="A pricing model (per_unit, graduated, volume, package) instead of custom_rate",
        examples=[{"model": "per_unit", "unit_price": "10.00"}],
    )


class LinePrice(PriceTerms):
    """A price of a plan line in force from ``effective_from`` until the next entry's date."""

    effective_from: date = Field(
        description="First day this price applies (tenant-local date)", examples=["2026-01-16"]
    )


def _check_levels(levels: list[Decimal] | None) -> None:
    if levels is not None and any(level <= 0 for level in levels):
        raise ValueError("threshold_levels are percentages > 0")


class PlanLine(PriceTerms):
    service_id: UUID | None = Field(
        default=None, description="The service priced by this line (or bundle_id)", examples=[ID_EXAMPLE]
    )
    bundle_id: UUID | None = Field(
        default=None, description="The bundle this line sells at the bundle's price (or service_id)", examples=[None]
    )
    added_as_dependency_of: list[UUID] = Field(
        default_factory=list,
        description="Set by the catalog: the selected services that required this line (empty: chosen directly)",
        examples=[[]],
    )
    quantity: DecimalStr = Field(
        default=Decimal(1), description="Fixed lines: units billed each period (1 unless given)", examples=["1"]
    )
    included_quantity: NonNegativeDecimalStr = Field(
        default=Decimal(0), description="Units included before the line charges anything", examples=["0", "5"]
    )
    prorate_included: bool = Field(
        default=True,
        description="When an assignment covers only part of a period, include included_quantity x covered days / "
        "period days (rounded half-up to 4 places); false: the whole included quantity applies to the part",
        examples=[True],
    )
    rounding_increment_minutes: int | None = Field(
        default=None, gt=0, description="Time lines: each entry's minutes rounded up to this increment", examples=[15]
    )
    minimum_minutes: int | None = Field(
        default=None, ge=0, description="Time lines: the fewest minutes an entry is billed at", examples=[30]
    )
    prices: list[LinePrice] = Field(
        default_factory=list,
        description="Effective-dated prices by ascending, unique effective_from. On day D the entry with the "
        "latest effective_from <= D applies; before the first entry, the line's own custom_rate / pricing",
        examples=[[{"effective_from": "2026-01-16", "custom_rate": "15.00"}]],
    )
    threshold_levels: list[NonNegativeDecimalStr] | None = Field(
        default=None,
        description="Percentages of included_quantity (usage lines with an included quantity) at which rating "
        "announces a threshold.crossed, each once per period (> 0; may exceed 100). Optional: null means 80 and 100",
        examples=[None, ["50", "90", "100"]],
    )

    @model_validator(mode="after")
    def _positive_levels(self) -> PlanLine:
        _check_levels(self.threshold_levels)
        return self

    @model_validator(mode="after")
    def _service_xor_bundle(self) -> PlanLine:
        if (self.service_id is None) == (self.bundle_id is None):
            raise ValueError("a plan line names exactly one of service_id or bundle_id")
        return self


class Rollover(Contract):
    policy: RolloverPolicy = Field(
        default=RolloverPolicy.NONE,
        description="none (unused hours lapse), carry_up_to (carry at most max_hours), expire_after "
        "(carried hours lapse after `periods` periods)",
        examples=["carry_up_to"],
    )
    max_hours: DecimalStr | None = Field(
        default=None, description="carry_up_to: the most unused hours carried into the next period", examples=["5"]
    )
    periods: int | None = Field(
        default=None, description="expire_after: how many periods carried hours stay usable", examples=[2]
    )


class BucketDefinition(Contract):
    hours: DecimalStr = Field(description="Hours included each bucket period (> 0)", examples=["20"])
    period: BillingFrequency = Field(description="How often the bucket refills", examples=["monthly"])
    overage_rate: NonNegativeDecimalStr = Field(description="Price per hour beyond the bucket", examples=["110.00"])
    rollover: Rollover = Field(
        default_factory=Rollover, description="What happens to unused hours", examples=[{"policy": "none"}]
    )
    prorate_partial_periods: bool = Field(
        default=True,
        description="A bucket period the assignment covers only in part (it starts or ends inside it) is allocated "
        "hours x covered days / period days (rounded half-up to 4 places); false: the whole allocation",
        examples=[True],
    )
    threshold_levels: list[NonNegativeDecimalStr] | None = Field(
        default=None,
        description="Percentages of the period's hours (allocation + carried in) at which rating announces a "
        "threshold.crossed, each once per period (> 0; may exceed 100). Optional: null means 80 and 100",
        examples=[None, ["50", "90", "100"]],
    )

    @model_validator(mode="after")
    def _positive_levels(self) -> BucketDefinition:
        _check_levels(self.threshold_levels)
        return self


class PlanState(Contract):
    entity_type: Literal["plan"] = Field(default="plan", description="Discriminator", examples=["plan"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    plan_id: UUID = Field(description="The plan", examples=[ID_EXAMPLE])
    name: str = Field(description="Plan name", examples=["Managed devices"])
    plan_type: PlanType = Field(
        description="fixed, time-based, usage-based, bucket or hybrid", examples=["usage-based"]
    )
    billing_frequency: BillingFrequency = Field(
        description="weekly, bi-weekly, monthly, quarterly, semi-annually or annually", examples=["monthly"]
    )
    currency: CurrencyCode = Field(description="Currency the plan's prices are in", examples=["GBP"])
    lines: list[PlanLine] = Field(description="Services on the plan", examples=[[{"service_id": ID_EXAMPLE}]])
    billing_timing: BillingTiming = Field(
        default=BillingTiming.ARREARS,
        description="advance (fixed charges billed at the start of their period) or arrears (after it)",
        examples=["arrears"],
    )
    is_custom: bool = Field(default=False, description="True for a plan made for one client", examples=[False])
    company_id: UUID | None = Field(
        default=None, description="A custom plan's client (must exist); null for a template", examples=[None]
    )
    bucket: BucketDefinition | None = Field(
        default=None,
        description="Bucket plans only (required there): the hours, their period, overage rate and rollover",
        examples=[{"hours": "20", "period": "monthly", "overage_rate": "110.00", "rollover": {"policy": "none"}}],
    )


class Term(Contract):
    length_months: int = Field(ge=1, description="Length of the term in months", examples=[12])
    auto_renew: bool = Field(default=False, description="Renews for another term at renewal_date", examples=[True])
    renewal_date: date | None = Field(
        default=None,
        description="When the term ends or renews; computed as start_date + length_months when not given",
        examples=["2027-01-01"],
    )


class AssignmentState(Contract):
    entity_type: Literal["assignment"] = Field(
        default="assignment", description="Discriminator", examples=["assignment"]
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    assignment_id: UUID = Field(description="The client-plan assignment", examples=[ID_EXAMPLE])
    company_id: UUID = Field(description="The client", examples=[ID_EXAMPLE])
    plan_id: UUID = Field(description="The plan", examples=[ID_EXAMPLE])
    start_date: date = Field(description="First day billed", examples=["2026-01-01"])
    end_date: date | None = Field(default=None, description="First day no longer billed (exclusive)", examples=[None])
    # -- scope and term (catalog-structure) --
    service_category: str | None = Field(
        default=None,
        description="The service category this assignment covers (None: every category)",
        examples=["backup"],
    )
    term: Term | None = Field(default=None, description="Contract term and renewal", examples=[None])


class BundleState(Contract):
    entity_type: Literal["bundle"] = Field(default="bundle", description="Discriminator", examples=["bundle"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    bundle_id: UUID = Field(description="The bundle", examples=[ID_EXAMPLE])
    name: str = Field(min_length=1, description="Display name", examples=["Security pack"])
    description: str = Field(default="", description="What the bundle offers", examples=["AV, EDR and backup"])
    price: DecimalStr = Field(description="The bundle's price per billing period", examples=["99.00"])
    currency: CurrencyCode = Field(description="Currency of the price", examples=["GBP"])
    service_ids: list[UUID] = Field(
        min_length=2, description="The services sold together (at least two)", examples=[[ID_EXAMPLE, ID_EXAMPLE]]
    )
    active: bool = Field(default=True, description="False once retired", examples=[True])


class ClientStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


class StatusChange(Contract):
    change_id: UUID = Field(description="This change", examples=[ID_EXAMPLE])
    status: ClientStatus = Field(description="active, suspended or cancelled", examples=["suspended"])
    effective_date: date = Field(description="First day the status applies", examples=["2026-02-01"])
    reason: str = Field(min_length=1, description="Why the status changed", examples=["unpaid invoices"])
    assignment_id: UUID | None = Field(
        default=None, description="The assignment it applies to (None: the whole client)", examples=[None]
    )
    service_id: UUID | None = Field(
        default=None, description="The single service of the client it applies to", examples=[None]
    )
    recorded_at: Timestamp = Field(description="When it was recorded", examples=["2026-01-20T09:00:00+00:00"])
    actor: str = Field(description="Who recorded it", examples=["user:8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"])


class ClientStatusState(Contract):
    """A client's status history (append-only); written only through POST /v1/companies/{id}/status."""

    entity_type: Literal["client_status"] = Field(
        default="client_status", description="Discriminator", examples=["client_status"]
    )
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client (the entity id)", examples=[ID_EXAMPLE])
    status: ClientStatus = Field(
        description="The client's own status after its latest client-wide change", examples=["active"]
    )
    history: list[StatusChange] = Field(
        description="Every change, in the order recorded (client, assignment and service scoped)", examples=[[]]
    )


class Role(StrEnum):
    """What a user may do is decided by their role (shared/auth.py grants permissions per role)."""

    ADMIN = "admin"
    BILLING_MANAGER = "billing_manager"
    APPROVER = "approver"
    TECHNICIAN = "technician"
    CLIENT_CONTACT = "client_contact"
    VIEWER = "viewer"


class UserKind(StrEnum):
    STAFF = "staff"
    CONTACT = "contact"


class UserState(Contract):
    entity_type: Literal["user"] = Field(default="user", description="Discriminator", examples=["user"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    user_id: UUID = Field(description="The user", examples=[ID_EXAMPLE])
    email: str = Field(
        min_length=3,
        description="Sign-in and notification address, unique per tenant",
        examples=["sam@northwind.example"],
    )
    name: str = Field(min_length=1, description="Display name", examples=["Sam Tech"])
    role: Role = Field(
        description="admin, billing_manager, approver, technician, client_contact or viewer", examples=["technician"]
    )
    kind: UserKind = Field(description="staff (the MSP's people) or contact (a client's)", examples=["staff"])
    company_id: UUID | None = Field(default=None, description="For client contacts: their client", examples=[None])
    user_ref: str | None = Field(
        default=None, description="The technician's id in the PSA (user_ref of time entries)", examples=["tech-17"]
    )
    hourly_rate: DecimalStr | None = Field(
        default=None, description="Technician's billable hourly rate", examples=["95.00"]
    )
    currency: CurrencyCode | None = Field(default=None, description="Currency of hourly_rate", examples=["GBP"])
    active: bool = Field(default=True, description="False once the user is deactivated", examples=[True])


class DiscountType(StrEnum):
    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"


class ApprovalStatus(StrEnum):
    """Set by the catalog, never by a client: only ``approved`` discounts are in effect."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DiscountState(Contract):
    """A discount or promotion, attached to exactly one of a plan, a service or a client, or to a client on
    one plan (``company_id`` + ``plan_id``: that client's discount on that plan, which overrides the plan's
    own discounts for that client; see `applicable_discounts`)."""

    entity_type: Literal["discount"] = Field(default="discount", description="Discriminator", examples=["discount"])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    discount_id: UUID = Field(description="The discount", examples=[ID_EXAMPLE])
    name: str = Field(min_length=1, description="Display name, shown on invoices", examples=["Loyalty 10%"])
    discount_type: DiscountType = Field(
        description="percentage (of the charge) or fixed_amount (in currency)", examples=["percentage"]
    )
    value: DecimalStr = Field(
        description="Percentage in (0, 100], or an amount > 0 in currency", examples=["10", "25.00"]
    )
    currency: CurrencyCode | None = Field(
        default=None,
        description="Currency of a fixed_amount discount (required there, refused otherwise)",
        examples=[None, "GBP"],
    )
    valid_from: date | None = Field(
        default=None, description="First day in effect (None: from the beginning)", examples=["2026-01-01"]
    )
    valid_to: date | None = Field(
        default=None, description="First day no longer in effect (exclusive; None: open-ended)", examples=[None]
    )
    active: bool = Field(default=True, description="False once withdrawn", examples=[True])
    plan_id: UUID | None = Field(
        default=None, description="The plan it discounts (alone: the plan's default)", examples=[ID_EXAMPLE]
    )
    service_id: UUID | None = Field(
        default=None, description="The service it discounts, on every plan (alone only)", examples=[None]
    )
    company_id: UUID | None = Field(
        default=None, description="The client it is for (with plan_id: only on that plan)", examples=[None]
    )
    approval_status: ApprovalStatus = Field(
        default=ApprovalStatus.PENDING,
        description="Set by the catalog (a value sent is ignored): approved at once unless an approval rule "
        "for discounts is crossed, then pending until the approvals service decides",
        examples=["approved", "pending"],
    )
    approval_request_id: UUID | None = Field(
        default=None,
        description="Set by the catalog: the ApprovalRequest this state waits for or was decided by",
        examples=[None, "3b241101-e2bb-4255-8caf-4136c566a962"],
    )


class OtherState(Contract):
    """An entity type this consumer does not know yet: kept as received, so adding a type to the catalog
    never breaks an older consumer (it simply has no use for it)."""

    entity_type: str = Field(description="The entity type", examples=["bundle"])


KNOWN_STATES: dict[str, type[Contract]] = {
    "tenant": TenantState,
    "company": CompanyState,
    "service": ServiceState,
    "plan": PlanState,
    "assignment": AssignmentState,
    "user": UserState,
    "category": CategoryState,
    "bundle": BundleState,
    "client_status": ClientStatusState,
    "discount": DiscountState,
}


def _entity_tag(value: Any) -> str:
    kind = value.get("entity_type") if isinstance(value, dict) else getattr(value, "entity_type", None)
    return kind if kind in KNOWN_STATES else "other"


EntityState = Annotated[
    Annotated[TenantState, Tag("tenant")]
    | Annotated[CompanyState, Tag("company")]
    | Annotated[ServiceState, Tag("service")]
    | Annotated[PlanState, Tag("plan")]
    | Annotated[AssignmentState, Tag("assignment")]
    | Annotated[UserState, Tag("user")]
    | Annotated[CategoryState, Tag("category")]
    | Annotated[BundleState, Tag("bundle")]
    | Annotated[ClientStatusState, Tag("client_status")]
    | Annotated[DiscountState, Tag("discount")]
    | Annotated[OtherState, Tag("other")],
    Discriminator(_entity_tag),
]


class CatalogEvent(Contract):
    event_id: UUID = Field(description="Unique id of this change", examples=[ID_EXAMPLE])
    tenant_id: UUID = Field(description="The MSP", examples=[TENANT_EXAMPLE])
    entity_type: str = Field(description="tenant, company, service, plan, assignment, …", examples=["service"])
    entity_id: UUID = Field(description="The entity's id", examples=[ID_EXAMPLE])
    version: int = Field(ge=1, description="Increases with every change of this entity", examples=[3])
    deleted: bool = Field(default=False, description="True when the entity was removed", examples=[False])
    occurred_at: Timestamp = Field(description="When the change was made", examples=["2026-01-05T09:30:00+00:00"])
    state: EntityState = Field(
        description="The entity's full state after the change (its shape follows entity_type)",
        examples=[{"entity_type": "service", "code": "managed-device"}],
    )

    def key(self) -> str:
        return f"{self.tenant_id}:{self.entity_type}:{self.entity_id}"


def price_on(line: PlanLine, day: date) -> PriceTerms:
    """The line's price in force on ``day``: the ``prices`` entry with the latest ``effective_from`` on or
    before ``day``; before the first entry (or without entries), the line's own custom_rate / pricing.

    Pure, so re-rating a past period uses the price that was in force then.
    """
    in_force = [p for p in line.prices if p.effective_from <= day]
    return max(in_force, key=lambda p: p.effective_from) if in_force else line


class NotFlatPricing(ValueError):
    """The price in force is a tiered or package model: no single unit rate prices it."""

    def __init__(self, model: str) -> None:
        super().__init__(f"pricing model {model} has no single unit rate")
        self.model = model


def rate_of(service: ServiceState, line: PlanLine | None, *, day: date) -> Decimal:
    """The flat unit rate on ``day``: the line's in-force custom_rate or per_unit price, else the service's
    default rate. Raises `NotFlatPricing` when the in-force price is graduated, volume or package."""
    if line is None:
        return service.default_rate
    terms = price_on(line, day)
    if terms.pricing is not None:
        if isinstance(terms.pricing, PerUnitPricing):
            return terms.pricing.unit_price
        raise NotFlatPricing(terms.pricing.model)
    if terms.custom_rate is not None:
        return terms.custom_rate
    return service.default_rate


# -- discounts: what is in effect ------------------------------------------------------------------------


def discount_in_effect(discount: DiscountState, day: date) -> bool:
    """Approved, active and within its dates (``valid_to`` exclusive) on ``day``."""
    return (
        discount.approval_status is ApprovalStatus.APPROVED
        and discount.active
        and (discount.valid_from is None or discount.valid_from <= day)
        and (discount.valid_to is None or day < discount.valid_to)
    )


def applicable_discounts(
    discounts: Iterable[DiscountState],
    *,
    company_id: UUID,
    plan_id: UUID | None,
    service_id: UUID | None,
    day: date,
) -> list[DiscountState]:
    """The discounts that apply to one client's charge (on a plan, for a service) on ``day``.

    Only discounts in effect count (`discount_in_effect`). Precedence: **a client-specific discount
    overrides the defaults for that client.** Client-specific means for this client, either on this plan
    (``company_id`` + ``plan_id``) or client-wide (``company_id`` alone); the defaults are the plan's
    (``plan_id`` alone) and the service's (``service_id`` alone). When any client-specific discount is in
    effect, those apply and the defaults do not; otherwise the defaults apply. Every discount of the
    winning level applies (percentages first, then fixed amounts, each in id order): how they combine on
    an invoice line is invoicing's to compute.
    """
    live = [d for d in discounts if discount_in_effect(d, day)]
    own = [d for d in live if d.company_id == company_id and d.plan_id in (None, plan_id)]
    defaults = [
        d
        for d in live
        if d.company_id is None
        and ((plan_id is not None and d.plan_id == plan_id) or (service_id is not None and d.service_id == service_id))
    ]
    chosen = own or defaults
    return sorted(chosen, key=lambda d: (d.discount_type is not DiscountType.PERCENTAGE, str(d.discount_id)))
