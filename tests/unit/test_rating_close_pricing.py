"""Spec for what rating charges at a period's close: period-priced usage, fixed fees (proration, plan change,
suspension, cancellation, reactivation, month-ends, leap years), adjustments and bucket overage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Context, Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rating.domain.buckets import allocation_for, settle
from services.rating.domain.close_pricing import (
    CarriedIn,
    FixedTarget,
    UsageRecord,
    adjustment,
    bucket_overage,
    fixed_fee,
    fixed_target,
    price_usage_line,
    span_start,
)
from services.rating.domain.line_pricing import line_terms
from services.rating.domain.pricing import PlanCandidate, Recorded, price_usage
from shared.contracts.catalog import AssignmentState, BucketDefinition, BundleState, PlanState, StatusChange
from shared.periods import Period
from tests.unit.test_pricing import COMPANY, PLAN, SERVICE, TENANT, a_company, a_record, a_service

D = Decimal
JAN = Period(date(2026, 1, 1), date(2026, 2, 1))
FIREWALL = FixedTarget(SERVICE, "firewall", "Firewall", "device", "fixed")


def plan(lines: list[dict[str, object]], *, plan_id: UUID = PLAN, **extra: object) -> PlanState:
    return PlanState.model_validate(
        {
            "tenant_id": str(TENANT),
            "plan_id": str(plan_id),
            "name": "Plan",
            "plan_type": "hybrid",
            "billing_frequency": "monthly",
            "currency": "GBP",
            "lines": lines,
        }
        | extra
    )


def candidate(p: PlanState, *, start: date = date(2026, 1, 1), end: date | None = None) -> PlanCandidate:
    a = AssignmentState(
        tenant_id=TENANT,
        assignment_id=UUID(int=p.plan_id.int ^ 1),
        company_id=COMPANY,
        plan_id=p.plan_id,
        start_date=start,
        end_date=end,
    )
    return PlanCandidate(a, p)


def status(kind: str, on: date, **scope: UUID) -> StatusChange:
    return StatusChange(
        change_id=UUID(int=on.toordinal() + len(kind)),
        status=kind,
        effective_date=on,
        reason="unpaid invoices",
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor="user:x",
        **scope,
    )


def fee(c: PlanCandidate, cycle: Period, history: list[StatusChange] | None = None, price: str = "100.00") -> Decimal:
    service = a_service(default_rate=price)
    priced = fixed_fee(
        company=a_company(),
        candidate=c,
        line_index=0,
        target=FIREWALL,
        unit_price_on=lambda day: line_terms(service, c.plan.lines[0], day),
        cycle=cycle,
        billed_in=cycle,
        history=history or [],
    )
    return priced.total


LINE = [{"service_id": str(SERVICE)}]


def share(price: str, days: int, of: int) -> Decimal:
    """A prorated fee as rating charges it: unrounded, to 60 digits (the invoice line rounds it by the remainder
    rule)."""
    return Context(prec=60).divide(D(price) * days, D(of))


class TestFixedFees:
    @pytest.mark.parametrize(
        ("cycle", "start", "end", "expected"),
        [
            # a whole month is never prorated
            (JAN, date(2026, 1, 1), None, D("100.00")),
            # starts Jan 15: 17 of 31 days = 54.8387... (54.84 on the invoice line: 100 - round(45.161..))
            (JAN, date(2026, 1, 15), None, share("100", 17, 31)),
            # ends Jan 20 (exclusive): 19 of 31 days = 61.290...
            (JAN, date(2026, 1, 1), date(2026, 1, 20), share("100", 19, 31)),
            # February 2026 (28 days), last day only: 1 of 28 days
            (Period(date(2026, 2, 1), date(2026, 3, 1)), date(2026, 2, 28), None, share("100", 1, 28)),
            # leap February 2028 (29 days), last day only: 1 of 29 days
            (Period(date(2028, 2, 1), date(2028, 3, 1)), date(2028, 2, 29), None, share("100", 1, 29)),
            # month-end anchor: the Jan 31 - Feb 29 2028 cycle (29 days), started Feb 15: 14 of 29 days
            (Period(date(2028, 1, 31), date(2028, 2, 29)), date(2028, 2, 15), None, share("100", 14, 29)),
        ],
    )
    def test_prorates_a_start_or_end_inside_the_cycle_by_days(
        self, cycle: Period, start: date, end: date | None, expected: Decimal
    ) -> None:
        assert fee(candidate(plan(LINE), start=start, end=end), cycle) == expected

    def test_a_plan_change_mid_cycle_charges_each_plan_for_its_days(self) -> None:
        old = candidate(plan(LINE), end=date(2026, 1, 16))
        new = candidate(plan(LINE, plan_id=UUID(int=77)), start=date(2026, 1, 16))
        # old: 15 of 31 days, new: 16 of 31 days; the invoice lines make them 48.39 and 51.61
        assert (fee(old, JAN), fee(new, JAN)) == (share("100", 15, 31), share("100", 16, 31))

    def test_an_upgrade_to_a_dearer_plan_mid_cycle(self) -> None:
        old = candidate(plan(LINE), end=date(2026, 1, 16))
        new = candidate(plan(LINE, plan_id=UUID(int=77)), start=date(2026, 1, 16))
        assert (fee(old, JAN), fee(new, JAN, price="150.00")) == (share("100", 15, 31), share("150", 16, 31))

    def test_a_line_price_change_mid_cycle_prorates_each_price_for_its_days(self) -> None:
        dated = [
            {
                "service_id": str(SERVICE),
                "custom_rate": "100.00",
                "prices": [{"effective_from": "2026-01-16", "custom_rate": "131.00"}],
            }
        ]
        assert fee(candidate(plan(dated)), JAN) == Context(prec=200).add(share("100", 15, 31), share("131", 16, 31))

    def test_a_quantity_multiplies_the_fee(self) -> None:
        assert fee(candidate(plan([{"service_id": str(SERVICE), "quantity": "3"}])), JAN) == D("300.00")  # 3 x 100


class TestCancellationAndSuspension:
    """Seed 000, "Cancellation and Suspension Handling Tests"."""

    def test_services_marked_as_suspended_do_not_generate_charges_during_the_suspension(self) -> None:
        history = [status("suspended", date(2026, 1, 11), service_id=SERVICE)]
        # billed Jan 1-11 only: 10 of 31 days
        assert fee(candidate(plan(LINE)), JAN, history) == share("100", 10, 31)
        usage = price_usage(
            a_record(),
            day=date(2026, 1, 15),
            company=a_company(),
            service=a_service(),
            candidates=[candidate(plan(LINE))],
            history=history,
        )
        assert isinstance(usage, Recorded)
        assert usage.disposition == "not_billed_status"

    def test_cancelled_services_are_no_longer_billed(self) -> None:
        history = [status("cancelled", date(2026, 1, 21))]
        # Jan 1-21: 20 of 31 days; February: nothing
        assert fee(candidate(plan(LINE)), JAN, history) == share("100", 20, 31)
        assert fee(candidate(plan(LINE)), Period(date(2026, 2, 1), date(2026, 3, 1)), history) == D(0)

    def test_reactivating_a_suspended_service_resumes_billing_from_its_date(self) -> None:
        history = [status("suspended", date(2026, 1, 11)), status("active", date(2026, 1, 21))]
        # Jan 1-11 and Jan 21-Feb 1: 10 and 11 of 31 days
        assert fee(candidate(plan(LINE)), JAN, history) == Context(prec=200).add(
            share("100", 10, 31), share("100", 11, 31)
        )

    def test_the_charge_states_the_suspension_in_its_proration(self) -> None:
        history = [status("suspended", date(2026, 1, 11))]
        c = candidate(plan(LINE))
        priced = fixed_fee(
            company=a_company(),
            candidate=c,
            line_index=0,
            target=FIREWALL,
            unit_price_on=lambda day: line_terms(a_service(default_rate="100.00"), c.plan.lines[0], day),
            cycle=JAN,
            billed_in=JAN,
            history=history,
        )
        [charge] = priced.charges
        assert charge.proration is not None
        assert (charge.proration.days, charge.proration.cycle_days, charge.proration.full_price) == (
            10,
            31,
            D("100.00"),
        )


class TestUsageAtClose:
    def records(self, *quantities: str, kind: str = "delta") -> list[UsageRecord]:
        return [
            UsageRecord(UUID(int=i + 1), datetime(2026, 1, 2 + i, tzinfo=UTC), kind, D(q))
            for i, q in enumerate(quantities)
        ]

    def priced(self, line: dict[str, object], records: list[UsageRecord]) -> list[tuple[Decimal, Decimal, Decimal]]:
        p = price_usage_line(
            company=a_company(),
            candidate=candidate(plan([{"service_id": str(SERVICE)} | line])),
            line_index=0,
            service=a_service(),
            period=JAN,
            records=records,
            span_bounds=(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        )
        return [(c.quantity, c.unit_price, c.amount) for c in p.charges]

    TIERS = [{"up_to": "10", "unit_price": "12.50"}, {"up_to": None, "unit_price": "10.00"}]

    @pytest.mark.parametrize(
        ("pricing", "quantities", "expected"),
        [
            # graduated: 6 + 9 = 15 -> 10 x 12.50 + 5 x 10.00
            ({"model": "graduated", "tiers": TIERS}, ("6", "9"), [(D(10), D("12.50"), D(125)), (D(5), D(10), D(50))]),
            # volume: 15 is in the second tier -> 15 x 10.00
            ({"model": "volume", "tiers": TIERS}, ("6", "9"), [(D(15), D(10), D(150))]),
            # package of 10 at 99: 15 -> 2 packages
            ({"model": "package", "package_size": "10", "package_price": "99"}, ("6", "9"), [(D(2), D(99), D(198))]),
        ],
    )
    def test_prices_the_periods_whole_quantity_with_the_lines_model(
        self, pricing: dict[str, object], quantities: tuple[str, ...], expected: list[tuple[Decimal, Decimal, Decimal]]
    ) -> None:
        assert self.priced({"pricing": pricing}, self.records(*quantities)) == expected

    def test_included_quantity_is_deducted_before_the_per_unit_price(self) -> None:
        # 6 + 9 = 15, 5 included: 10 x 12.50 (the default rate)
        assert self.priced({"included_quantity": "5"}, self.records("6", "9")) == [(D(10), D("12.50"), D(125))]

    def test_snapshots_are_aggregated_at_their_peak_by_default(self) -> None:
        # counts 4, 9, 7 -> peak 9 x 12.50
        assert self.priced({}, self.records("4", "9", "7", kind="snapshot")) == [(D(9), D("12.50"), D("112.50"))]

    DECEMBER_45 = UsageRecord(UUID(int=99), datetime(2025, 12, 10, 9, 30, tzinfo=UTC), "snapshot", D(45))

    def test_the_count_carried_in_is_billed_when_no_snapshot_arrives_in_the_period(self) -> None:
        p = price_usage_line(
            company=a_company(),
            candidate=candidate(plan([{"service_id": str(SERVICE)}])),
            line_index=0,
            service=a_service(),
            period=JAN,
            records=[],
            span_bounds=(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
            carried_in=CarriedIn(self.DECEMBER_45, datetime(2026, 1, 1, tzinfo=UTC)),
        )
        [charge] = p.charges
        # 45 devices counted on Dec 10 are still in force in January: 45 x 12.50 = 562.50
        assert (charge.quantity, charge.unit_price, charge.amount) == (D(45), D("12.50"), D("562.50"))
        assert charge.source_records == [UUID(int=99)]
        assert charge.explanation is not None
        assert "45 device carried in from the snapshot of 2025-12-10T09:30:00+00:00" in charge.explanation

    def test_the_carried_in_count_is_a_source_record_alongside_the_periods_snapshots(self) -> None:
        p = price_usage_line(
            company=a_company(),
            candidate=candidate(plan([{"service_id": str(SERVICE)}])),
            line_index=0,
            service=a_service(),
            period=JAN,
            records=self.records("4", "9", kind="snapshot"),  # Jan 2 and Jan 3
            span_bounds=(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
            carried_in=CarriedIn(self.DECEMBER_45, datetime(2026, 1, 1, tzinfo=UTC)),
        )
        [charge] = p.charges
        # peak of 45 (in force Jan 1-2), 4, 9 = 45 x 12.50 = 562.50
        assert (charge.quantity, charge.amount) == (D(45), D("562.50"))
        assert charge.source_records == [UUID(int=1), UUID(int=2), UUID(int=99)]

    def test_a_carried_in_count_of_zero_charges_nothing(self) -> None:
        zero = UsageRecord(UUID(int=99), datetime(2025, 12, 10, tzinfo=UTC), "snapshot", D(0))
        p = price_usage_line(
            company=a_company(),
            candidate=candidate(plan([{"service_id": str(SERVICE)}])),
            line_index=0,
            service=a_service(),
            period=JAN,
            records=[],
            span_bounds=(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
            carried_in=CarriedIn(zero, datetime(2026, 1, 1, tzinfo=UTC)),
        )
        assert p.total == D(0)

    def test_an_assignment_starting_mid_period_carries_the_count_in_from_its_own_start(self) -> None:
        c = candidate(plan([{"service_id": str(SERVICE)}]), start=date(2026, 1, 11))
        assert span_start(c, JAN) == date(2026, 1, 11)
        service = a_service().model_copy(update={"snapshot_aggregation": "time_weighted_average"})
        p = price_usage_line(
            company=a_company(),
            candidate=c,
            line_index=0,
            service=service,
            period=JAN,
            records=[UsageRecord(UUID(int=1), datetime(2026, 1, 21, tzinfo=UTC), "snapshot", D(20))],
            span_bounds=(datetime(2026, 1, 11, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
            carried_in=CarriedIn(self.DECEMBER_45, datetime(2026, 1, 11, tzinfo=UTC)),
        )
        # 45 from Jan 11 to Jan 21, 20 from Jan 21 to Feb 1, over the 21 days covered:
        # (45 x 10 + 20 x 11) / 21 = (450 + 220) / 21 = 670 / 21 = 31.90476... -> 31.9048 devices (4 places)
        [charge] = p.charges
        assert charge.quantity == D("31.9048")
        assert charge.amount == D("398.8100")  # 31.9048 x 12.50: the quantity printed is the quantity priced
        assert (charge.service_period_start, charge.service_period_end) == (date(2026, 1, 11), date(2026, 2, 1))

    def included(self, line: dict[str, object], *, start: date, end: date | None = None, used: str = "30") -> Decimal:
        """What is left to price after the included quantity, for an assignment covering [start, end) of January."""
        c = candidate(plan([{"service_id": str(SERVICE), "included_quantity": "10"} | line]), start=start, end=end)
        first = datetime(start.year, start.month, start.day, tzinfo=UTC)
        last = datetime(2026, 2, 1, tzinfo=UTC) if end is None else datetime(end.year, end.month, end.day, tzinfo=UTC)
        p = price_usage_line(
            company=a_company(),
            candidate=c,
            line_index=0,
            service=a_service(),
            period=JAN,
            records=[UsageRecord(UUID(int=1), first, "delta", D(used))],
            span_bounds=(first, last),
        )
        [charge] = p.charges
        assert charge.included_quantity is not None
        return charge.included_quantity

    def test_an_included_quantity_is_prorated_by_the_days_an_assignment_covers(self) -> None:
        # 10 included a month; the plan starts Jan 15: 17 of 31 days -> 10 x 17 / 31 = 5.4838... -> 5.4839
        assert self.included({}, start=date(2026, 1, 15)) == D("5.4839")
        # ends Jan 21 (exclusive): 20 of 31 days -> 6.4516
        assert self.included({}, start=date(2026, 1, 1), end=date(2026, 1, 21)) == D("6.4516")
        # the whole month: all 10
        assert self.included({}, start=date(2026, 1, 1)) == D(10)

    def test_a_line_can_keep_its_whole_included_quantity_for_part_of_a_period(self) -> None:
        assert self.included({"prorate_included": False}, start=date(2026, 1, 15)) == D(10)

    def test_the_prorated_included_quantity_is_what_is_deducted(self) -> None:
        c = candidate(plan([{"service_id": str(SERVICE), "included_quantity": "10"}]), start=date(2026, 1, 15))
        p = price_usage_line(
            company=a_company(),
            candidate=c,
            line_index=0,
            service=a_service(),
            period=JAN,
            records=[UsageRecord(UUID(int=1), datetime(2026, 1, 20, tzinfo=UTC), "delta", D(8))],
            span_bounds=(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        )
        # 8 used - 5.4839 included = 2.5161 x 12.50 = 31.45125 (31.45 on the invoice line)
        [charge] = p.charges
        assert (charge.quantity, charge.amount) == (D("2.5161"), D("31.451250"))

    def test_a_late_record_adds_only_the_difference_referencing_what_was_sent(self) -> None:
        line = {"pricing": {"model": "graduated", "tiers": self.TIERS}}
        c = candidate(plan([{"service_id": str(SERVICE)} | line]))
        args = {
            "company": a_company(),
            "candidate": c,
            "line_index": 0,
            "service": a_service(),
            "period": JAN,
            "span_bounds": (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        }
        sent = price_usage_line(records=self.records("6", "2"), **args)  # 8 x 12.50 = 100
        again = price_usage_line(records=self.records("6", "2", "5"), **args)  # 10 x 12.50 + 3 x 10 = 155
        adj = adjustment(
            priced=again,
            sent_total=sent.total,
            sent_ids=[c.charge_id for c in sent.charges],
            billed_in=Period(date(2026, 2, 1), date(2026, 3, 1)),
            reason="late usage",
        )
        assert adj is not None
        assert (adj.amount, adj.period_start, adj.late) == (D(55), date(2026, 2, 1), True)  # 155 - 100
        assert adj.corrects_charge_ids == [c.charge_id for c in sent.charges]
        assert adjustment(priced=again, sent_total=again.total, sent_ids=[], billed_in=JAN, reason="x") is None


class TestBucketOverage:
    def test_overage_hours_are_charged_at_the_buckets_overage_rate_per_service(self) -> None:
        definition = BucketDefinition.model_validate({"hours": "10", "period": "monthly", "overage_rate": "110.00"})
        p = plan([{"service_id": str(SERVICE)}], plan_type="bucket", bucket=definition.model_dump(mode="json"))
        ids = [UUID(int=1), UUID(int=2)]
        settlement = settle(definition, [], [(ids[0], D(7)), (ids[1], D("4.5"))])
        priced = bucket_overage(
            company=a_company(),
            candidate=candidate(p),
            definition=definition,
            settlement=settlement,
            bucket_period=JAN,
            billed_in=JAN,
            service_of={i: a_service() for i in ids},
            line_of={SERVICE: 0},
        )
        [charge] = priced.charges
        # 7 + 4.5 = 11.5 h against 10: 1.5 h x 110.00 = 165.00
        assert (charge.quantity, charge.amount, charge.source_records) == (D("1.5"), D("165.00"), [ids[1]])
        assert charge.bucket is not None
        assert (charge.bucket.used, charge.bucket.overage, charge.bucket.remaining) == (D(10), D("1.5"), D(0))


class TestBundles:
    BUNDLE = UUID("88888888-8888-4888-8888-888888888888")

    def bundle(self) -> BundleState:
        return BundleState(
            tenant_id=TENANT,
            bundle_id=self.BUNDLE,
            name="Security pack",
            price=D("99.00"),
            currency="GBP",
            service_ids=[SERVICE, UUID(int=9)],
        )

    def test_a_bundle_line_is_charged_at_the_bundle_price_per_cycle(self) -> None:
        p = plan([{"bundle_id": str(self.BUNDLE)}])
        target = fixed_target(p.lines[0], {}, {self.BUNDLE: self.bundle()})
        assert target is not None
        assert (target.kind, target.service_id) == ("bundle", self.BUNDLE)
        price_as_service = a_service(default_rate="99.00")  # the bundle's price is the line's default
        priced = fixed_fee(
            company=a_company(),
            candidate=candidate(p),
            line_index=0,
            target=target,
            unit_price_on=lambda day: line_terms(price_as_service, p.lines[0], day),
            cycle=JAN,
            billed_in=JAN,
            history=[],
        )
        assert [(c.kind, c.amount) for c in priced.charges] == [("bundle", D("99.00"))]

    def test_usage_of_a_member_service_is_recorded_and_not_charged_again(self) -> None:
        result = price_usage(
            a_record(),
            day=date(2026, 1, 15),
            company=a_company(),
            service=a_service(),
            candidates=[candidate(plan([{"bundle_id": str(self.BUNDLE)}]))],
            bundles={self.BUNDLE: self.bundle()},
        )
        assert isinstance(result, Recorded)
        assert result.disposition == "in_bundle"

    def test_a_usage_line_is_not_a_fixed_fee(self) -> None:
        assert fixed_target(plan(LINE).lines[0], {SERVICE: a_service()}, {}) is None


class TestAPriceChangeInsideThePeriod:
    """A line priced at close whose price changes inside the period: each record's units are priced by the
    price in force on its (tenant-local) day, at their place in the period's running quantity."""

    OLD = [{"up_to": "10", "unit_price": "12.50"}, {"up_to": None, "unit_price": "10.00"}]
    NEW = [{"up_to": "10", "unit_price": "11.00"}, {"up_to": None, "unit_price": "9.00"}]

    def priced(self, line: dict[str, object], *records: tuple[int, str], tz: str = "UTC") -> list[tuple[str, ...]]:
        p = price_usage_line(
            company=a_company(),
            candidate=candidate(plan([{"service_id": str(SERVICE)} | line])),
            line_index=0,
            service=a_service(),
            period=JAN,
            records=[
                UsageRecord(UUID(int=i + 1), datetime(2026, 1, day, 12, tzinfo=UTC), "delta", D(q))
                for i, (day, q) in enumerate(records)
            ],
            span_bounds=(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
            day_of=lambda t: t.date(),
        )
        return [(str(c.quantity), str(c.unit_price), str(c.amount), c.price_rule.rate_source) for c in p.charges]

    def graduated(self, **extra: object) -> dict[str, object]:
        return {
            "pricing": {"model": "graduated", "tiers": self.OLD},
            "prices": [{"effective_from": "2026-01-16", "pricing": {"model": "graduated", "tiers": self.NEW}}],
        } | extra

    def test_graduated_units_are_priced_by_the_tiers_in_force_on_their_day_without_restarting_the_tiers(self) -> None:
        # 8 on Jan 5 under the old tiers: units (0, 8] = 8 x 12.50 = 100.00
        # 6 on Jan 20 under the new tiers: units (8, 14] = 2 x 11.00 (tier 1) + 4 x 9.00 (tier 2) = 22.00 + 36.00
        # total 158.00 (the last day's tiers for the whole period would be 10 x 11 + 4 x 9 = 146.00)
        assert self.priced(self.graduated(), (5, "8"), (20, "6")) == [
            ("8", "12.50", "100.00", "plan_line_pricing"),
            ("2", "11.00", "22.00", "plan_line_pricing@2026-01-16"),
            ("4", "9.00", "36.00", "plan_line_pricing@2026-01-16"),
        ]

    def test_the_included_quantity_is_used_first_then_each_segment_prices_its_share(self) -> None:
        # 5 included. Jan 5: 8 -> units 0..8, 5 free, billable (0, 3] = 3 x 12.50 = 37.50
        # Jan 20: 6 -> running 14, billable (3, 9] all in tier 1 of the new tiers = 6 x 11.00 = 66.00
        assert self.priced(self.graduated(included_quantity="5"), (5, "8"), (20, "6")) == [
            ("3", "12.50", "37.50", "plan_line_pricing"),
            ("6", "11.00", "66.00", "plan_line_pricing@2026-01-16"),
        ]

    def test_a_per_unit_line_with_an_included_quantity_prices_each_days_units_at_that_days_rate(self) -> None:
        # custom rate 5.00, then 6.00 from Jan 16; 10 included.
        # Jan 3: 7 (all included); Jan 10: 5 -> billable (0, 2] x 5.00 = 10.00; Jan 25: 4 -> (2, 6] x 6.00 = 24.00
        line = {
            "custom_rate": "5.00",
            "included_quantity": "10",
            "prices": [{"effective_from": "2026-01-16", "custom_rate": "6.00"}],
        }
        assert self.priced(line, (3, "7"), (10, "5"), (25, "4")) == [
            ("2", "5.00", "10.00", "plan_line_custom_rate"),
            ("4", "6.00", "24.00", "plan_line_custom_rate@2026-01-16"),
        ]

    def test_nothing_used_after_the_change_is_priced_entirely_at_the_old_price(self) -> None:
        # 14 units all before Jan 16: 10 x 12.50 + 4 x 10.00 = 165.00, the old tiers throughout
        assert self.priced(self.graduated(), (5, "8"), (9, "6")) == [
            ("10", "12.50", "125.00", "plan_line_pricing"),
            ("4", "10.00", "40.00", "plan_line_pricing"),
        ]

    @given(
        quantities=st.lists(
            st.tuples(st.integers(1, 31), st.decimals(min_value=D("0.01"), max_value=D(500), places=2)),
            min_size=1,
            max_size=8,
        ),
        model=st.sampled_from(["graduated", "volume", "package"]),
        included=st.sampled_from(["0", "5", "40"]),
    )
    def test_with_the_same_terms_before_and_after_the_change_the_segments_sum_to_the_whole_period_price(
        self, quantities: list[tuple[int, Decimal]], model: str, included: str
    ) -> None:
        pricing: dict[str, object] = (
            {"model": "package", "package_size": "10", "package_price": "99"}
            if model == "package"
            else {"model": model, "tiers": self.OLD}
        )
        same = {"pricing": pricing, "included_quantity": included}
        changed = same | {"prices": [{"effective_from": "2026-01-16", "pricing": pricing}]}
        records = [(day, str(q)) for day, q in quantities]
        total = sum(D(q) for _, q in records)
        whole = sum(D(c[2]) for c in self.priced(same, *records))
        split = sum(D(c[2]) for c in self.priced(changed, *records))
        assert split == whole, (total, whole, split)


class TestBucketAllocation:
    """docs/billing-rules.md §5: a bucket period the assignment covers only in part gets its share of the hours."""

    BUCKET = BucketDefinition(hours=D(10), period="weekly", overage_rate=D(110))
    WEEK = Period(date(2026, 1, 5), date(2026, 1, 12))  # Monday to Monday

    def allocation(self, start: date, end: date | None = None, **bucket: object) -> Decimal:
        definition = self.BUCKET.model_copy(update=bucket)
        a = candidate(plan(LINE), start=start, end=end).assignment
        return allocation_for(definition, self.WEEK, a)

    def test_a_whole_bucket_period_gets_all_its_hours(self) -> None:
        assert self.allocation(date(2026, 1, 1)) == D(10)

    def test_a_retainer_starting_on_a_thursday_gets_four_sevenths_of_the_week(self) -> None:
        # from Thursday Jan 8: 4 of 7 days -> 10 x 4 / 7 = 5.714285... -> 5.7143 h
        assert self.allocation(date(2026, 1, 8)) == D("5.7143")

    def test_a_retainer_ending_on_a_wednesday_gets_two_sevenths(self) -> None:
        # ends Wednesday Jan 7 (exclusive): Monday and Tuesday -> 10 x 2 / 7 = 2.8571 h
        assert self.allocation(date(2026, 1, 1), date(2026, 1, 7)) == D("2.8571")

    def test_a_bucket_can_keep_its_whole_allocation_for_a_partial_period(self) -> None:
        assert self.allocation(date(2026, 1, 8), prorate_partial_periods=False) == D(10)

    def test_overage_starts_beyond_the_prorated_allocation(self) -> None:
        # 5.7143 h available, 7 h worked: 1.2857 h over at 110.00
        settlement = settle(self.BUCKET, [], [(UUID(int=1), D(7))], allocation=D("5.7143"))
        assert (settlement.allocation, settlement.used, settlement.overage) == (D("5.7143"), D("5.7143"), D("1.2857"))


class TestAFixedServiceOnTwoPlans:
    """docs/billing-rules.md §4: two assignments are two contracts; each charges its own fixed line."""

    def test_each_plan_charges_its_own_fee_for_the_same_service(self) -> None:
        site_a = candidate(plan(LINE))
        site_b = candidate(plan(LINE, plan_id=UUID(int=78)))
        fees = [fee(site_a, JAN), fee(site_b, JAN, price="80.00")]
        assert fees == [D("100.00"), D("80.00")]  # 180.00: charged twice, once per plan
        assert site_a.assignment.assignment_id != site_b.assignment.assignment_id
