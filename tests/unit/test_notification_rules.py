"""Notification's pure rules: who gets what on which channel, reminder stages, renewals, retries, signatures,
templates and the invoicing payload adapter."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notification.adapters.invoicing import NotAnInvoiceEvent, invoice_event_of, overdue_notice_of
from services.notification.domain import rules
from services.notification.domain import templates as tpl
from services.notification.domain.rules import Channel, NotificationType, Recipient, RecipientKind

COMPANY = uuid.uuid4()
BILLING = Recipient(COMPANY, RecipientKind.COMPANY, "ap@acme.example", None, COMPANY, "Acme")
CONTACT = Recipient(uuid.uuid4(), RecipientKind.CONTACT, "casey@acme.example", "+447700900123", COMPANY, "Casey")
STAFF = Recipient(uuid.uuid4(), RecipientKind.STAFF, "omar@msp.example", None, None, "Omar")


class TestPreferences:
    def test_by_default_invoices_go_to_the_billing_address_by_email_only(self) -> None:
        dests, missing = rules.destinations([BILLING, CONTACT], NotificationType.INVOICE_ISSUED, {}, [])

        assert [(d.recipient, d.channel, d.address) for d in dests] == [(BILLING, Channel.EMAIL, "ap@acme.example")]
        assert missing == []

    def test_a_contact_who_opts_in_to_sms_and_turns_off_the_billing_email_gets_only_the_sms(self) -> None:
        choices = {
            CONTACT.recipient_id: {(NotificationType.INVOICE_ISSUED, Channel.SMS): True},
            BILLING.recipient_id: {(NotificationType.INVOICE_ISSUED, Channel.EMAIL): False},
        }

        dests, _ = rules.destinations([BILLING, CONTACT], NotificationType.INVOICE_ISSUED, choices, [])

        assert [(d.recipient, d.channel, d.address) for d in dests] == [(CONTACT, Channel.SMS, "+447700900123")]

    def test_sms_without_a_phone_number_is_reported_not_dropped(self) -> None:
        choices = {BILLING.recipient_id: {(NotificationType.OVERDUE, Channel.SMS): True}}

        _, missing = rules.destinations([BILLING], NotificationType.OVERDUE, choices, [])

        assert missing == [(BILLING, Channel.SMS, "no phone number")]

    def test_a_client_endpoint_gets_one_call_however_many_of_its_people_ask(self) -> None:
        hook = rules.Endpoint(uuid.uuid4(), "https://hooks.example/acme", COMPANY, frozenset())
        other = rules.Endpoint(uuid.uuid4(), "https://hooks.example/other", uuid.uuid4(), frozenset())
        on = {(NotificationType.OVERAGE_ALERT, Channel.WEBHOOK): True}
        choices = {BILLING.recipient_id: on, CONTACT.recipient_id: on}

        dests, _ = rules.destinations([BILLING, CONTACT], NotificationType.OVERAGE_ALERT, choices, [hook, other])

        assert [d.address for d in dests if d.channel is Channel.WEBHOOK] == ["https://hooks.example/acme"]

    def test_the_idempotency_key_is_the_event_the_recipient_and_the_channel(self) -> None:
        email = rules.Destination(BILLING, Channel.EMAIL, "ap@acme.example")
        sms = rules.Destination(BILLING, Channel.SMS, "+44")

        assert rules.notification_id("e1", email) == rules.notification_id("e1", email)
        assert len({rules.notification_id("e1", email), rules.notification_id("e2", email)}) == 2
        assert rules.notification_id("e1", email) != rules.notification_id("e1", sms)

    def test_staff_get_approval_requests_by_default_and_no_client_mail(self) -> None:
        assert rules.channels_for(STAFF, NotificationType.APPROVAL_REQUESTED, {}) == [Channel.EMAIL]
        assert rules.channels_for(STAFF, NotificationType.INVOICE_ISSUED, {}) == []


class TestReminders:
    DUE = date(2026, 3, 3)
    LONDON = "Europe/London"

    def plan(self, now: str, done: set[int] = frozenset(), status: str = "finalized") -> rules.ReminderPlan:  # type: ignore[assignment]
        return rules.reminders_due(
            due_date=self.DUE,
            offsets=(-7, 0, 7, 14),
            done=done,
            now=datetime.fromisoformat(now),
            timezone=self.LONDON,
            status=status,
        )

    def test_nothing_before_seven_days_ahead_of_the_due_date(self) -> None:
        assert self.plan("2026-02-23T23:59:59+00:00") == rules.ReminderPlan(None, ())

    def test_the_first_reminder_falls_due_at_midnight_in_the_tenants_time_zone(self) -> None:
        # 2026-02-24 00:00 Europe/London is 00:00 UTC (GMT in February).
        assert self.plan("2026-02-24T00:00:00+00:00") == rules.ReminderPlan(-7, ())

    def test_a_stage_already_sent_is_not_sent_again(self) -> None:
        assert self.plan("2026-02-25T00:00:00+00:00", done={-7}) == rules.ReminderPlan(None, ())

    def test_a_clock_jump_sends_only_the_latest_stage_and_skips_the_rest(self) -> None:
        assert self.plan("2026-03-20T00:00:00+00:00") == rules.ReminderPlan(14, (-7, 0, 7))

    @pytest.mark.parametrize("status", ["paid", "void", "cancelled"])
    def test_a_closed_invoice_gets_no_reminder(self, status: str) -> None:
        assert self.plan("2026-03-20T00:00:00+00:00", status=status) == rules.ReminderPlan(None, ())

    def test_after_the_due_date_a_reminder_is_an_overdue_notice(self) -> None:
        assert rules.reminder_type(-7) is NotificationType.PAYMENT_REMINDER
        assert rules.reminder_type(0) is NotificationType.PAYMENT_REMINDER
        assert rules.reminder_type(7) is NotificationType.OVERDUE

    @given(st.lists(st.integers(-30, 60), min_size=1, max_size=6, unique=True), st.integers(0, 100))
    def test_every_stage_is_sent_or_skipped_at_most_once_however_the_clock_moves(
        self, offsets: list[int], steps: int
    ) -> None:
        done: set[int] = set()
        seen: list[int] = []
        now = datetime(2026, 1, 1, tzinfo=UTC)
        for _ in range(steps % 12 + 1):
            now += timedelta(days=steps % 17 + 1)
            plan = rules.reminders_due(
                due_date=self.DUE, offsets=offsets, done=done, now=now, timezone="UTC", status="finalized"
            )
            for o in [*plan.skip, *([plan.send] if plan.send is not None else [])]:
                seen.append(o)
                done.add(o)
        assert len(seen) == len(set(seen))


class TestRenewalsAndRetries:
    def test_a_renewal_notice_is_due_from_notice_days_before_until_the_renewal(self) -> None:
        due = {
            day: rules.renewal_notice_due(
                renewal_date=date(2027, 1, 1),
                end_date=None,
                notice_days=30,
                now=datetime.fromisoformat(day),
                timezone="UTC",
            )
            for day in ("2026-12-01T23:00:00+00:00", "2026-12-02T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
        }
        assert due == {
            "2026-12-01T23:00:00+00:00": False,
            "2026-12-02T00:00:00+00:00": True,  # 2027-01-01 - 30 days
            "2027-01-01T00:00:00+00:00": False,
        }

    def test_no_renewal_notice_when_the_assignment_ends_first(self) -> None:
        assert not rules.renewal_notice_due(
            renewal_date=date(2027, 1, 1),
            end_date=date(2026, 12, 31),
            notice_days=30,
            now=datetime(2026, 12, 15, tzinfo=UTC),
            timezone="UTC",
        )

    def test_term_end_is_the_start_plus_its_months_clamped_to_month_end(self) -> None:
        assert rules.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
        assert rules.add_months(date(2026, 1, 1), 12) == date(2027, 1, 1)

    def test_retries_back_off_in_billing_time_then_fail(self) -> None:
        now = datetime(2026, 2, 1, tzinfo=UTC)
        assert rules.next_attempt(1, now) == ("retrying", now + timedelta(minutes=5))
        assert rules.next_attempt(2, now) == ("retrying", now + timedelta(minutes=30))
        assert rules.next_attempt(4, now) == ("retrying", now + timedelta(hours=6))
        assert rules.next_attempt(5, now) == ("failed", None)
        assert rules.next_attempt(1, None) == ("retrying", None)

    def test_threshold_at_or_over_the_limit_is_an_overage_alert(self) -> None:
        assert rules.threshold_type("bucket", Decimal("80")) is NotificationType.BUCKET_THRESHOLD
        assert rules.threshold_type("usage", Decimal("100")) is NotificationType.OVERAGE_ALERT


class TestSignatures:
    def test_a_signature_verifies_with_its_secret_and_not_with_another_or_a_changed_body(self) -> None:
        header = rules.sign("whsec_0123456789abcdef", 1767225600, b'{"a":1}')

        assert header.startswith("t=1767225600,v1=")
        assert rules.verify("whsec_0123456789abcdef", header, b'{"a":1}')
        assert not rules.verify("whsec_other_secret_value", header, b'{"a":1}')
        assert not rules.verify("whsec_0123456789abcdef", header, b'{"a":2}')


class TestTemplates:
    def test_email_bodies_escape_what_they_insert(self) -> None:
        rendered = tpl.render(
            tpl.default_template(NotificationType.APPROVAL_REQUESTED, Channel.EMAIL),
            Channel.EMAIL,
            dict(tpl.SAMPLE_CONTEXT[NotificationType.APPROVAL_REQUESTED]) | {"summary": "<script>x</script>"},
        )
        assert "<script>" not in rendered.body
        assert "&lt;script&gt;" in rendered.body
        assert rendered.subject == "Approval needed: <script>x</script>"  # a subject is plain text, not HTML

    def test_every_default_template_renders_with_its_types_names(self) -> None:
        for kind in NotificationType:
            for channel in Channel:
                tpl.check(tpl.default_template(kind, channel), kind, channel)

    def test_a_template_using_a_name_its_type_lacks_is_refused_naming_the_field(self) -> None:
        with pytest.raises(tpl.TemplateInvalid) as caught:
            tpl.check(tpl.Template("Invoice {{ summary }}", "x"), NotificationType.INVOICE_ISSUED, Channel.EMAIL)
        assert caught.value.field == "subject"

    def test_the_sandbox_refuses_reaching_into_python(self) -> None:
        with pytest.raises(tpl.TemplateInvalid):
            tpl.check(
                tpl.Template("s", "{{ sender.__class__.__mro__[1].__subclasses__() }}"),
                NotificationType.INVOICE_ISSUED,
                Channel.EMAIL,
            )


class TestInvoicingPayload:
    def bare(self) -> dict[str, object]:
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": "invoice.voided",
            "occurred_at": "2026-02-01T00:05:00+00:00",
            "tenant_id": str(uuid.uuid4()),
            "company_ref": "acme",
            "livemode": False,
            "invoice": {
                "invoice_id": str(uuid.uuid4()),
                "invoice_number": "INV-2602-00001",
                "status": "void",
                "currency": "GBP",
                "tax_inclusive": False,
                "issue_date": "2026-02-01",
                "due_date": "2026-03-03",
                "period_start": "2026-01-01",
                "period_end": "2026-02-01",
                "customer": {"name": "Acme", "billing_email": "ap@acme.example", "region": "GB", "tax_id": None},
                "lines": [],
                "subtotal": "0.00",
                "discount_total": "0.00",
                "tax_total": "0.00",
                "total": "0.00",
                "credits_applied": "0.00",
                "amount_paid": "0.00",
                "amount_due": "0.00",
            },
        }

    def test_a_bare_invoice_event_has_no_document(self) -> None:
        event, pdf, name = invoice_event_of(self.bare())
        assert event is not None
        assert (event.company_ref, pdf, name) == ("acme", None, None)

    def notice(self, **changes: Any) -> dict[str, Any]:
        bare = self.bare()
        return {
            "notice_id": str(uuid.uuid4()),
            "notice_type": "invoice.finalized",
            "occurred_at": "2026-02-01T00:00:00Z",
            "tenant_id": bare["tenant_id"],
            "company_id": str(uuid.uuid4()),
            "company_ref": "acme",
            "livemode": False,
            "invoice_id": bare["invoice"]["invoice_id"],
            "invoice_number": "INV-2602-00001",
            "status": "finalized",
            "billing_email": "ap@acme.example",
            "currency": "GBP",
            "amount_due": "0.00",
            "event": bare,
            "attachment": {
                "file_name": "INV-2602-00001.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(b"%PDF-1.4").decode(),
            },
        } | changes

    def test_invoicings_notice_gives_its_event_and_its_pdf(self) -> None:
        event, pdf, name = invoice_event_of(self.notice())
        assert event is not None
        assert (event.company_ref, pdf, name) == ("acme", b"%PDF-1.4", "INV-2602-00001.pdf")

    def test_a_notice_of_a_step_without_an_invoice_event_gives_nothing_to_send(self) -> None:
        overdue = self.notice(notice_type="invoice.overdue", status="overdue", event=None, attachment=None)
        assert invoice_event_of(overdue) == (None, None, None)

    def test_a_wrapper_carries_the_pdf(self) -> None:
        doc = {"filename": "INV-2602-00001.pdf", "content_base64": base64.b64encode(b"%PDF-1.4").decode()}
        _, pdf, name = invoice_event_of({"event": self.bare(), "document": doc})
        assert (pdf, name) == (b"%PDF-1.4", "INV-2602-00001.pdf")

    def test_a_wrapper_without_a_document_is_accepted(self) -> None:
        assert invoice_event_of({"event": self.bare()})[1] is None

    def test_a_document_that_is_not_base64_is_refused_naming_the_field(self) -> None:
        with pytest.raises(NotAnInvoiceEvent) as caught:
            invoice_event_of({"event": self.bare(), "document": {"filename": "a.pdf", "content_base64": "%%%"}})
        assert caught.value.field == "document.content_base64"


class TestOverdueNoticesAndTheOneMessageADayRule:
    def test_the_notice_counts_as_the_stage_of_its_days_past_due(self) -> None:
        assert rules.overdue_notice_offset(due_date=date(2026, 3, 3), day=date(2026, 3, 4)) == 1
        assert rules.overdue_notice_offset(due_date=date(2026, 2, 27), day=date(2026, 3, 1)) == 2  # not a leap year

    def test_an_invoice_already_told_that_day_is_not_told_again(self) -> None:
        sent = [date(2026, 3, 4), date(2026, 3, 10)]
        assert rules.already_told_today(sent, date(2026, 3, 4))
        assert not rules.already_told_today(sent, date(2026, 3, 5))
        assert not rules.already_told_today([], date(2026, 3, 4))


class TestUnsubscribeLinks:
    TENANT, CONTACT, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    KEY = "a" * 64

    def contact(self) -> Recipient:
        return Recipient(self.CONTACT, RecipientKind.CONTACT, "c@acme.example", None, uuid.uuid4(), "Casey")

    def test_client_facing_emails_of_optional_types_carry_a_link_invoices_and_staff_emails_do_not(self) -> None:
        staff = Recipient(self.OTHER, RecipientKind.STAFF, "s@msp.example", None, None, "Sam")
        assert rules.unsubscribable(self.contact(), NotificationType.OVERAGE_ALERT, Channel.EMAIL)
        assert not rules.unsubscribable(self.contact(), NotificationType.INVOICE_ISSUED, Channel.EMAIL)
        assert not rules.unsubscribable(self.contact(), NotificationType.OVERAGE_ALERT, Channel.SMS)
        assert not rules.unsubscribable(staff, NotificationType.APPROVAL_REQUESTED, Channel.EMAIL)

    def test_a_signature_is_valid_only_for_its_tenant_recipient_type_and_key(self) -> None:
        sig = rules.unsubscribe_signature(self.KEY, self.TENANT, self.CONTACT, NotificationType.OVERDUE)
        assert rules.unsubscribe_valid(self.KEY, self.TENANT, self.CONTACT, NotificationType.OVERDUE, sig)
        assert not rules.unsubscribe_valid(self.KEY, self.TENANT, self.OTHER, NotificationType.OVERDUE, sig)
        assert not rules.unsubscribe_valid(self.KEY, self.TENANT, self.CONTACT, NotificationType.OVERAGE_ALERT, sig)
        assert not rules.unsubscribe_valid(self.KEY, uuid.uuid4(), self.CONTACT, NotificationType.OVERDUE, sig)
        assert not rules.unsubscribe_valid("b" * 64, self.TENANT, self.CONTACT, NotificationType.OVERDUE, sig)


class TestOverdueNoticePayload:
    def test_an_overdue_notice_is_read_and_other_notices_are_not(self) -> None:
        notice = {
            "notice_id": str(uuid.uuid4()),
            "notice_type": "invoice.overdue",
            "occurred_at": "2026-03-04T00:00:30Z",
            "tenant_id": str(uuid.uuid4()),
            "company_id": str(uuid.uuid4()),
            "company_ref": "acme",
            "livemode": False,
            "invoice_id": str(uuid.uuid4()),
            "invoice_number": "INV-1",
            "status": "overdue",
            "billing_email": "ap@acme.example",
            "currency": "GBP",
            "amount_due": "120.00",
        }
        read = overdue_notice_of(notice)
        assert read is not None
        assert str(read.invoice_id) == notice["invoice_id"]
        assert overdue_notice_of(notice | {"notice_type": "invoice.sent", "status": "sent"}) is None
