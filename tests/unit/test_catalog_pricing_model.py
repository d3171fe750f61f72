"""Spec for plan-line pricing in the catalog contract: pricing models and their rules, dated prices
(`price_on`), buckets, custom plans, service categories, and how rating treats a non-flat line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.catalog.domain.plan_rules import plan_is_well_formed, plan_problems
from services.catalog.domain.problems import Problem
from services.catalog.domain.service_rules import category_not_in_use, service_category_exists
from services.rating.domain.pricing import Deferred, PlanCandidate, Unrated, price_usage
from shared.contracts.catalog import (
    CategoryState,
    LinePrice,
    NotFlatPricing,
    PlanLine,
    PlanState,
    ServiceState,
    SnapshotAggregation,
    price_on,
    rate_of,
)
from tests.unit.test_pricing import COMPANY, SERVICE, TENANT, a_company, a_record, a_service, an_assignment

PLAN = UUID("44444444-4444-4444-8444-444444444444")
CATEGORY = UUID("88888888-8888-4888-8888-888888888888")
CHANGE = date(2026, 1, 16)

GRADUATED = {
    "model": "graduated",
    "tiers": [
        {"up_to": "10", "unit_price": "12.50"},
        {"up_to": "50", "unit_price": "10"},
        {"up_to": None, "unit_price": "8"},
    ],
}


def a_plan(**changes: Any) -> PlanState:
    doc: dict[str, Any] = {
        "tenant_id": str(TENANT),
        "plan_id": str(PLAN),
        "name": "Managed devices",
        "plan_type": "usage-based",
        "billing_frequency": "monthly",
        "currency": "GBP",
        "lines": [{"service_id": str(SERVICE)}],
    }
    return PlanState.model_validate(doc | changes)


def with_line(**line: Any) -> PlanState:
    return a_plan(lines=[{"service_id": str(SERVICE)} | line])


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def a_line(*, custom_rate: str | None = "12.50", prices: Sequence[tuple[date, str]] = ()) -> PlanLine:
    return PlanLine(
        service_id=SERVICE,
        custom_rate=None if custom_rate is None else Decimal(custom_rate),
        prices=[LinePrice(effective_from=d, custom_rate=Decimal(r)) for d, r in prices],
    )


class FakeView:
    """The catalog as rules see it, from a dict of states."""

    def __init__(self, *states: Any) -> None:
        self._states = list(states)

    async def get(self, entity_type: str, entity_id: UUID) -> Any | None:
        return next(
            (s for s in self._states if s.entity_type == entity_type and getattr(s, f"{entity_type}_id") == entity_id),
            None,
        )

    async def find(self, entity_type: str, **equals: str) -> list[Any]:
        return [
            s
            for s in self._states
            if s.entity_type == entity_type and all(str(getattr(s, k)) == v for k, v in equals.items())
        ]


class TestPricingModels:
    @pytest.mark.parametrize(
        "pricing",
        [
            {"model": "per_unit", "unit_price": "12.50"},
            GRADUATED,
            GRADUATED | {"model": "volume"},
            {"model": "graduated", "tiers": [{"up_to": None, "unit_price": "9", "flat_fee": "5.00"}]},
            {"model": "package", "package_size": "10", "package_price": "99.00"},
        ],
        ids=["per_unit", "graduated", "volume", "one_unbounded_tier", "package"],
    )
    def test_a_well_formed_model_is_accepted(self, pricing: dict[str, Any]) -> None:
        plan = with_line(pricing=pricing)

        assert plan_problems(plan) == []
        assert plan.lines[0].pricing is not None
        assert plan.lines[0].pricing.model == pricing["model"]

    def test_an_unknown_model_name_is_refused_by_the_contract(self) -> None:
        with pytest.raises(ValidationError, match="per_unit"):
            with_line(pricing={"model": "percentage", "rate": "3"})

    @pytest.mark.parametrize(
        ("tiers", "path"),
        [
            ([], "lines.0.pricing.tiers"),
            (
                [
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "5", "unit_price": "1"},
                    {"up_to": None, "unit_price": "1"},
                ],
                "lines.0.pricing.tiers.1.up_to",
            ),
            (
                [
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": None, "unit_price": "1"},
                ],
                "lines.0.pricing.tiers.1.up_to",
            ),
            (
                [
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "20", "unit_price": "1"},
                    {"up_to": "30", "unit_price": "1"},
                ],
                "lines.0.pricing.tiers.2.up_to",
            ),
            ([{"up_to": None, "unit_price": "1"}, {"up_to": None, "unit_price": "1"}], "lines.0.pricing.tiers.0.up_to"),
            ([{"up_to": "0", "unit_price": "1"}, {"up_to": None, "unit_price": "1"}], "lines.0.pricing.tiers.0.up_to"),
            (
                [{"up_to": "10", "unit_price": "-1"}, {"up_to": None, "unit_price": "1"}],
                "lines.0.pricing.tiers.0.unit_price",
            ),
            ([{"up_to": None, "unit_price": "1", "flat_fee": "-5"}], "lines.0.pricing.tiers.0.flat_fee"),
        ],
        ids=[
            "no_tiers",
            "descending",
            "repeated",
            "last_bounded",
            "unbounded_first",
            "zero_bound",
            "negative_price",
            "negative_fee",
        ],
    )
    @pytest.mark.parametrize("model", ["graduated", "volume"])
    def test_tiers_that_break_a_rule_are_refused_naming_the_path(
        self, model: str, tiers: list[dict[str, Any]], path: str
    ) -> None:
        problems = plan_problems(with_line(pricing={"model": model, "tiers": tiers}))

        assert path in fields(problems)

    @pytest.mark.parametrize(
        ("pricing", "path"),
        [
            ({"model": "package", "package_size": "0", "package_price": "99"}, "lines.0.pricing.package_size"),
            ({"model": "package", "package_size": "-2", "package_price": "99"}, "lines.0.pricing.package_size"),
            ({"model": "package", "package_size": "10", "package_price": "-1"}, "lines.0.pricing.package_price"),
            ({"model": "per_unit", "unit_price": "-0.01"}, "lines.0.pricing.unit_price"),
        ],
    )
    def test_packages_and_unit_prices_that_break_a_rule_are_refused(self, pricing: dict[str, Any], path: str) -> None:
        assert fields(plan_problems(with_line(pricing=pricing))) == [path]

    def test_a_line_takes_a_custom_rate_or_a_pricing_model_not_both(self) -> None:
        problems = plan_problems(with_line(custom_rate="10", pricing={"model": "per_unit", "unit_price": "10"}))

        assert fields(problems) == ["lines.0.pricing"]

    def test_a_negative_custom_rate_is_refused(self) -> None:
        assert fields(plan_problems(with_line(custom_rate="-1"))) == ["lines.0.custom_rate"]


class TestLineDefaults:
    def test_a_line_bills_one_unit_and_includes_none_unless_told(self) -> None:
        line = a_plan().lines[0]

        assert (line.quantity, line.included_quantity) == (Decimal(1), Decimal(0))
        assert (line.rounding_increment_minutes, line.minimum_minutes, line.prices) == (None, None, [])

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            ({"included_quantity": "-1"}, "included_quantity"),
            ({"rounding_increment_minutes": 0}, "rounding_increment_minutes"),
            ({"minimum_minutes": -5}, "minimum_minutes"),
        ],
    )
    def test_out_of_range_line_fields_are_refused_by_the_contract(self, line: dict[str, Any], field: str) -> None:
        with pytest.raises(ValidationError) as caught:
            with_line(**line)

        assert caught.value.errors()[0]["loc"] == ("lines", 0, field)

    def test_a_quantity_must_be_positive(self) -> None:
        assert fields(plan_problems(with_line(quantity="0"))) == ["lines.0.quantity"]


class TestDatedPrices:
    @pytest.mark.parametrize(
        ("day", "rate"),
        [
            (CHANGE - timedelta(days=1), Decimal("12.50")),
            (CHANGE, Decimal("15.00")),
            (CHANGE + timedelta(days=1), Decimal("15.00")),
        ],
        ids=["the_day_before", "on_the_day", "the_day_after"],
    )
    def test_the_price_changes_on_its_effective_day(self, day: date, rate: Decimal) -> None:
        line = a_line(custom_rate="12.50", prices=[(CHANGE, "15.00")])

        assert rate_of(a_service(), line, day=day) == rate

    def test_before_the_first_entry_the_lines_own_price_applies_else_the_services_default(self) -> None:
        line = a_line(custom_rate=None, prices=[(CHANGE, "15.00")])

        assert price_on(line, CHANGE - timedelta(days=1)) is line
        assert rate_of(a_service(default_rate="9.99"), line, day=CHANGE - timedelta(days=1)) == Decimal("9.99")

    def test_a_later_change_supersedes_an_earlier_one(self) -> None:
        line = a_line(prices=[(date(2026, 1, 1), "13"), (date(2026, 2, 1), "14"), (date(2026, 3, 1), "15")])

        assert rate_of(a_service(), line, day=date(2026, 2, 14)) == Decimal("14")

    def test_a_dated_price_may_switch_the_line_to_a_pricing_model(self) -> None:
        plan = with_line(custom_rate="12.50", prices=[{"effective_from": "2026-01-16", "pricing": GRADUATED}])

        assert plan_problems(plan) == []
        with pytest.raises(NotFlatPricing, match="graduated"):
            rate_of(a_service(), plan.lines[0], day=CHANGE)

    @pytest.mark.parametrize(
        ("prices", "path"),
        [
            (
                [
                    {"effective_from": "2026-02-01", "custom_rate": "1"},
                    {"effective_from": "2026-01-01", "custom_rate": "2"},
                ],
                "lines.0.prices.1.effective_from",
            ),
            (
                [
                    {"effective_from": "2026-01-01", "custom_rate": "1"},
                    {"effective_from": "2026-01-01", "custom_rate": "2"},
                ],
                "lines.0.prices.1.effective_from",
            ),
            ([{"effective_from": "2026-01-01"}], "lines.0.prices.0.custom_rate"),
            (
                [
                    {
                        "effective_from": "2026-01-01",
                        "custom_rate": "1",
                        "pricing": {"model": "per_unit", "unit_price": "1"},
                    }
                ],
                "lines.0.prices.0.pricing",
            ),
            (
                [
                    {
                        "effective_from": "2026-01-01",
                        "pricing": {"model": "package", "package_size": "0", "package_price": "1"},
                    }
                ],
                "lines.0.prices.0.pricing.package_size",
            ),
        ],
        ids=["out_of_order", "same_day_twice", "no_price", "both_prices", "bad_model"],
    )
    def test_dated_prices_that_break_a_rule_are_refused_naming_the_entry(
        self, prices: list[dict[str, Any]], path: str
    ) -> None:
        assert fields(plan_problems(with_line(prices=prices))) == [path]

    @given(
        changes=st.dictionaries(
            st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)),
            st.decimals(min_value=0, max_value=1000, places=2),
            max_size=6,
        ),
        day=st.dates(min_value=date(2023, 6, 1), max_value=date(2029, 6, 1)),
    )
    def test_the_price_in_force_is_the_latest_entry_not_after_the_day(
        self, changes: dict[date, Decimal], day: date
    ) -> None:
        line = a_line(custom_rate="12.50", prices=sorted((d, str(r)) for d, r in changes.items()))

        in_force = price_on(line, day)

        earlier = [d for d in changes if d <= day]
        if earlier:
            assert isinstance(in_force, LinePrice)
            assert in_force.effective_from == max(earlier)
            assert in_force.custom_rate == changes[max(earlier)]
        else:
            assert in_force is line


class TestBuckets:
    BUCKET = {"hours": "20", "period": "monthly", "overage_rate": "110.00"}

    def test_a_bucket_plan_with_its_bucket_is_accepted_and_nothing_rolls_over_unless_told(self) -> None:
        plan = a_plan(plan_type="bucket", bucket=self.BUCKET)

        assert plan_problems(plan) == []
        assert plan.bucket is not None
        assert plan.bucket.rollover.policy == "none"

    @pytest.mark.parametrize(
        ("plan", "path"),
        [
            ({"plan_type": "bucket"}, "bucket"),
            ({"plan_type": "usage-based", "bucket": BUCKET}, "bucket"),
            ({"plan_type": "bucket", "bucket": BUCKET | {"hours": "0"}}, "bucket.hours"),
            (
                {"plan_type": "bucket", "bucket": BUCKET | {"rollover": {"policy": "carry_up_to"}}},
                "bucket.rollover.max_hours",
            ),
            (
                {"plan_type": "bucket", "bucket": BUCKET | {"rollover": {"policy": "none", "max_hours": "5"}}},
                "bucket.rollover.max_hours",
            ),
            (
                {"plan_type": "bucket", "bucket": BUCKET | {"rollover": {"policy": "expire_after"}}},
                "bucket.rollover.periods",
            ),
            (
                {
                    "plan_type": "bucket",
                    "bucket": BUCKET | {"rollover": {"policy": "carry_up_to", "max_hours": "5", "periods": 2}},
                },
                "bucket.rollover.periods",
            ),
        ],
        ids=[
            "missing",
            "on_another_type",
            "no_hours",
            "carry_without_max",
            "max_without_carry",
            "expire_without_periods",
            "periods_without_expiry",
        ],
    )
    def test_bucket_rules_name_the_field(self, plan: dict[str, Any], path: str) -> None:
        assert fields(plan_problems(a_plan(**plan))) == [path]

    @pytest.mark.parametrize(
        "bucket",
        [
            BUCKET | {"period": "fortnightly"},
            BUCKET | {"overage_rate": "-1"},
            BUCKET | {"rollover": {"policy": "forever"}},
        ],
    )
    def test_malformed_bucket_fields_are_refused_by_the_contract(self, bucket: dict[str, Any]) -> None:
        with pytest.raises(ValidationError) as caught:
            a_plan(plan_type="bucket", bucket=bucket)

        assert caught.value.errors()[0]["loc"][0] == "bucket"


class TestPlanFields:
    @pytest.mark.parametrize(
        ("field", "value"),
        [("plan_type", "retainer"), ("billing_frequency", "fortnightly"), ("billing_timing", "later")],
    )
    def test_unknown_enum_values_are_refused(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError) as caught:
            a_plan(**{field: value})

        assert caught.value.errors()[0]["loc"] == (field,)

    def test_keeps_the_wire_values_rating_reads(self) -> None:
        doc = a_plan(plan_type="time-based", billing_frequency="bi-weekly").model_dump(mode="json")

        assert (doc["plan_type"], doc["billing_frequency"], doc["billing_timing"]) == (
            "time-based",
            "bi-weekly",
            "arrears",
        )

    @pytest.mark.parametrize(
        ("ownership", "ok"),
        [
            ({}, True),
            ({"is_custom": True, "company_id": str(COMPANY)}, True),
            ({"is_custom": True}, False),
            ({"company_id": str(COMPANY)}, False),
        ],
        ids=["template", "custom_for_a_client", "custom_without_client", "template_with_client"],
    )
    def test_a_custom_plan_belongs_to_one_client_and_a_template_to_none(
        self, ownership: dict[str, Any], ok: bool
    ) -> None:
        assert fields(plan_problems(a_plan(**ownership))) == ([] if ok else ["company_id"])

    async def test_a_custom_plans_client_must_exist(self) -> None:
        plan = a_plan(is_custom=True, company_id=str(COMPANY))

        assert fields(await plan_is_well_formed(plan, None, FakeView(a_service()))) == ["company_id"]
        assert await plan_is_well_formed(plan, None, FakeView(a_service(), a_company())) == []

    @pytest.mark.parametrize("line", [{"quantity": "3"}, {"rounding_increment_minutes": 15}, {"minimum_minutes": 30}])
    async def test_fixed_and_time_line_fields_are_refused_on_a_usage_service(self, line: dict[str, Any]) -> None:
        problems = await plan_is_well_formed(with_line(**line), None, FakeView(a_service()))

        assert fields(problems) == [f"lines.0.{next(iter(line))}"]


def a_category() -> CategoryState:
    return CategoryState(tenant_id=TENANT, category_id=CATEGORY, name="Endpoints")


class TestServiceCategories:
    def test_a_usage_service_aggregates_snapshots_at_peak_unless_told(self) -> None:
        assert a_service().snapshot_aggregation == SnapshotAggregation.PEAK

    def test_a_fixed_service_has_no_snapshot_aggregation(self) -> None:
        fixed = ServiceState.model_validate(
            a_service().model_dump() | {"service_type": "Fixed", "snapshot_aggregation": None}
        )

        assert fixed.snapshot_aggregation is None

    async def test_a_fixed_service_with_a_snapshot_aggregation_is_refused(self) -> None:
        fixed = a_service().model_copy(update={"service_type": "Fixed", "snapshot_aggregation": "last"})

        assert fields(await service_category_exists(fixed, None, FakeView())) == ["snapshot_aggregation"]

    async def test_a_services_category_must_exist(self) -> None:
        service = a_service().model_copy(update={"category_id": CATEGORY})

        assert fields(await service_category_exists(service, None, FakeView())) == ["category_id"]
        assert await service_category_exists(service, None, FakeView(a_category())) == []

    async def test_a_category_in_use_cannot_be_deleted_and_the_refusal_names_the_services(self) -> None:
        service = a_service().model_copy(update={"category_id": CATEGORY})

        [problem] = await category_not_in_use(a_category(), FakeView(service))

        assert problem.conflict
        assert "managed-device" in problem.message

    async def test_an_unused_category_can_be_deleted(self) -> None:
        assert await category_not_in_use(a_category(), FakeView(a_service())) == []


class TestRatingNonFlatLines:
    @pytest.mark.parametrize("model", ["graduated", "volume", "package"])
    def test_defers_a_record_whose_line_is_priced_by_a_non_flat_model_to_the_periods_close(self, model: str) -> None:
        pricing = {"graduated": GRADUATED, "volume": GRADUATED | {"model": "volume"}}.get(
            model, {"model": "package", "package_size": "10", "package_price": "99"}
        )
        plan = with_line(pricing=pricing)

        result = price_usage(
            a_record(),
            day=date(2026, 1, 15),
            company=a_company(),
            service=a_service(),
            candidates=[PlanCandidate(an_assignment(), plan)],
        )

        # tiers and packages need the period's whole quantity: priced when the period closes (rating issue)
        assert isinstance(result, Deferred)
        assert (result.disposition, result.quantity) == ("at_close", Decimal(3))

    def test_defers_only_from_the_day_a_dated_price_switches_to_tiers(self) -> None:
        plan = with_line(custom_rate="12.50", prices=[{"effective_from": "2026-01-16", "pricing": GRADUATED}])
        candidates = [PlanCandidate(an_assignment(), plan)]

        before = price_usage(
            a_record(), day=date(2026, 1, 15), company=a_company(), service=a_service(), candidates=candidates
        )
        after = price_usage(
            a_record(), day=date(2026, 1, 16), company=a_company(), service=a_service(), candidates=candidates
        )

        assert not isinstance(before, Unrated)
        assert isinstance(before, tuple)
        assert before[0].unit_price == Decimal("12.50")
        assert isinstance(after, Deferred)

    @pytest.mark.parametrize(
        ("day", "rate", "source"),
        [
            (date(2026, 1, 15), "12.50", "plan_line_custom_rate"),
            (date(2026, 1, 16), "15.00", "plan_line_custom_rate@2026-01-16"),
        ],
    )
    def test_charges_the_dated_price_in_force_and_says_which(self, day: date, rate: str, source: str) -> None:
        plan = with_line(custom_rate="12.50", prices=[{"effective_from": "2026-01-16", "custom_rate": "15.00"}])

        result = price_usage(
            a_record(quantity="2"),
            day=day,
            company=a_company(),
            service=a_service(),
            candidates=[PlanCandidate(an_assignment(), plan)],
        )

        assert not isinstance(result, Unrated)
        charge = result[0]
        assert (charge.unit_price, charge.amount) == (Decimal(rate), 2 * Decimal(rate))
        assert charge.price_rule.rate_source == source

    def test_a_per_unit_model_is_flat_and_charged(self) -> None:
        plan = with_line(pricing={"model": "per_unit", "unit_price": "11"})

        result = price_usage(
            a_record(),
            day=date(2026, 1, 15),
            company=a_company(),
            service=a_service(),
            candidates=[PlanCandidate(an_assignment(), plan)],
        )

        assert not isinstance(result, Unrated)
        assert result[0].price_rule.rate_source == "plan_line_per_unit_price"
        assert result[0].unit_price == Decimal("11")
