"""The dashboard's page arithmetic and form handling: pure functions, hand-computed expectations."""

from __future__ import annotations

from datetime import date

import pytest

from services.dashboard import views


def period(start: str, end: str, **hours: str) -> dict[str, str]:
    row = {"assignment_id": "a-1", "period_start": start, "period_end": end, "allocation": "10", "rolled_in": "0",
           "used": "0", "overage": "0", "remaining": "0", "rolled_out": "0"}  # fmt: skip
    return row | hours


class TestBucketChart:
    def test_bars_scale_to_the_tallest_period_and_overage_stacks_on_used(self) -> None:
        rows = [
            period("2026-02-01", "2026-03-01", used="3", remaining="7", rolled_out="5"),
            period("2026-01-01", "2026-02-01", used="10", overage="2"),
        ]
        [chart] = views.bucket_charts(rows)
        jan, feb = chart.bars

        # the tallest period is January, 10 used + 2 overage = 12 h over 180 units: 15 units an hour
        assert chart.top == "12"
        assert (jan.label, jan.allocated_h, jan.used_h, jan.overage_h) == ("Jan 2026", 150.0, 150.0, 30.0)
        assert jan.overage_y == chart.baseline - 150.0 - 30.0
        assert (feb.label, feb.allocated_h, feb.used_h, feb.overage_h) == ("Feb 2026", 150.0, 45.0, 0.0)
        assert jan.summary == "Jan 2026: used 10 of 10 hours allocated, 2 hours overage"
        assert feb.summary == "Feb 2026: used 3 of 10 hours allocated"
        assert (feb.remaining, feb.rolled_out) == ("7", "5")

    def test_hours_rolled_in_count_as_allocated(self) -> None:
        [chart] = views.bucket_charts([period("2026-03-01", "2026-04-01", rolled_in="5", used="12.50")])
        [march] = chart.bars

        # 10 h of the period + 5 h carried from February = 15 h available
        assert (march.allocated, march.used, march.rolled_in) == ("15", "12.5", "5")
        assert march.allocated_h == 180.0  # the tallest value fills the chart
        assert march.used_h == 150.0  # 12.5 / 15 x 180

    def test_each_bucket_assignment_gets_its_own_chart(self) -> None:
        rows = [period("2026-01-01", "2026-02-01"), period("2026-01-01", "2026-02-01") | {"assignment_id": "a-2"}]
        assert [c.assignment_id for c in views.bucket_charts(rows)] == ["a-1", "a-2"]

    def test_no_settled_period_draws_no_chart(self) -> None:
        assert views.bucket_charts([]) == []


class TestServiceForm:
    form = {"code": " cloud-backup ", "name": "Cloud backup", "service_type": "Usage", "default_rate": "0.20",
            "currency": "gbp", "unit": "GB", "category_id": "", "tax_category": ""}  # fmt: skip

    def test_a_new_service_is_the_form_trimmed_with_blank_optionals_as_null(self) -> None:
        body = views.service_body(self.form, service_id="s-1", existing=None)
        assert body == {"service_id": "s-1", "code": "cloud-backup", "name": "Cloud backup", "service_type": "Usage",
                        "default_rate": "0.20", "currency": "GBP", "unit": "GB", "category_id": None,
                        "tax_category": None}  # fmt: skip

    def test_an_edit_keeps_what_the_form_does_not_show(self) -> None:
        existing = {"tenant_id": "t", "entity_type": "service", "service_id": "s-1", "active": False,
                    "requires": ["s-0"], "snapshot_aggregation": "last", "default_rate": "0.10"}  # fmt: skip
        body = views.service_body(self.form, service_id="s-1", existing=existing)
        assert (body["active"], body["requires"], body["snapshot_aggregation"]) == (False, ["s-0"], "last")
        assert body["default_rate"] == "0.20"
        assert "tenant_id" not in body  # the tenant comes from the token, never the body

    def test_a_time_service_has_no_snapshot_aggregation(self) -> None:
        existing = {"snapshot_aggregation": "peak"}
        body = views.service_body(self.form | {"service_type": "Time"}, service_id="s-1", existing=existing)
        assert body["snapshot_aggregation"] is None

    def test_an_unknown_type_is_refused_naming_the_field(self) -> None:
        with pytest.raises(views.FormProblem) as refused:
            views.service_body(self.form | {"service_type": "Magic"}, service_id="s-1", existing=None)
        assert refused.value.field == "service_type"


class TestAssignmentForm:
    def test_client_plan_and_start_are_required(self) -> None:
        with pytest.raises(views.FormProblem) as refused:
            views.assignment_body({"company_id": "c", "plan_id": "p", "start_date": ""}, assignment_id="a")
        assert refused.value.field == "start_date"

    def test_an_open_ended_assignment_has_no_end(self) -> None:
        form = {"company_id": "c", "plan_id": "p", "start_date": "2026-01-01", "end_date": ""}
        assert views.assignment_body(form, assignment_id="a")["end_date"] is None


class TestReports:
    def test_the_default_window_is_this_year_up_to_next_month_and_aging_as_of_today(self) -> None:
        window = views.report_window(None, None, None, today=date(2026, 11, 22))
        assert (window.start, window.end, window.as_of) == ("2026-01-01", "2026-12-01", "2026-11-22")

    def test_in_december_the_window_ends_on_the_first_of_next_year(self) -> None:
        assert views.report_window(None, None, None, today=date(2026, 12, 5)).end == "2027-01-01"

    def test_given_dates_are_used_and_unreadable_ones_fall_back(self) -> None:
        window = views.report_window("2026-02-01", "not-a-date", "2026-03-31", today=date(2026, 11, 22))
        assert (window.start, window.end, window.as_of) == ("2026-02-01", "2026-12-01", "2026-03-31")

    def test_aging_columns_read_as_day_ranges_and_amounts_align_as_numbers(self) -> None:
        assert [views.column_label(c) for c in ("current", "1_30", "over_90", "total_in_base")] == [
            "current", "1 to 30 days", "over 90 days", "total in base",
        ]  # fmt: skip
        assert [views.is_number(v) for v in ("45.00", "-3", 2, True, "GBP", None)] == [
            True, True, True, False, False, False,
        ]  # fmt: skip

    def test_audit_trails_of_several_services_merge_oldest_first(self) -> None:
        trails = [
            {"service": "rating", "data": {"entries": [{"seq": 1, "at": "2026-01-02T00:00:00+00:00"}]}},
            {"service": "catalog", "data": {"entries": [{"seq": 7, "at": "2026-01-01T00:00:00+00:00"}]}},
            {"service": "metering", "missing": "not there"},
        ]
        merged = views.merged_audit(trails)
        assert [(e["service"], e["seq"]) for e in merged] == [("catalog", 7), ("rating", 1)]
