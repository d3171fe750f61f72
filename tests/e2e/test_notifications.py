"""Seed 000 "Notification System Tests", against real components: the notification service of the running
platform sends to a real SMTP server (aiosmtpd) and a local HTTP sink (SMS gateway and webhooks) that these
tests start; invoice events are published on invoicing.lifecycle.v1 by a test producer (with and without the
PDF wrapper), the billing clock is the sandbox test clock."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.notification.domain.rules import verify
from shared.services import service
from tests.support.platform import Platform, Tenant
from tests.support.sinks import HttpSink, SmtpServer

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SECRET = "whsec_test_0123456789abcdef"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    s = HttpSink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def notification(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.stack.url(service("notification")), timeout=60) as client:
        yield client


async def configure(client: httpx.AsyncClient, tenant: Tenant, smtp: SmtpServer, sink: HttpSink | None) -> None:
    body: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_from": "billing@northwind.example",
        "smtp_from_name": "Northwind IT",
    }
    if sink is not None:
        body |= {"sms_url": sink.url("/sms"), "sms_sender": "Northwind"}
    response = await client.put("/v1/notification-settings", json=body, headers=tenant.auth)
    assert response.status_code == 200, response.text


def invoice_event(tenant: Tenant, number: str, *, event_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A finalized invoice: one line of 8 devices x 12.50 = 100.00, VAT 20 % = 20.00, total 120.00."""
    line = {
        "line_id": str(uuid.uuid4()),
        "kind": "usage",
        "service_ref": "managed-device",
        "description": "Managed device, January",
        "quantity": "8",
        "unit": "device",
        "unit_price": "12.50",
        "amount": "100.00",
        "discount_amount": "0.00",
        "net_amount": "100.00",
        "taxes": [{"name": "VAT", "rate": "20", "amount": "20.00", "compound": False, "exemption_reason": None}],
        "tax_amount": "20.00",
        "total": "120.00",
        "period_start": "2026-01-01",
        "period_end": "2026-02-01",
    }
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": "invoice.finalized",
        "occurred_at": "2026-02-01T00:05:00+00:00",
        "tenant_id": str(tenant.tenant_id),
        "company_ref": tenant.company_ref,
        "livemode": False,
        "invoice": {
            "invoice_id": str(uuid.uuid4()),
            "invoice_number": number,
            "status": "finalized",
            "currency": "GBP",
            "tax_inclusive": False,
            "issue_date": "2026-02-01",
            "due_date": "2026-03-03",
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "customer": {"name": "Acme Dental", "billing_email": "ap@acme.example", "region": "GB", "tax_id": None},
            "lines": [line],
            "subtotal": "100.00",
            "discount_total": "0.00",
            "tax_total": "20.00",
            "total": "120.00",
            "credits_applied": "0.00",
            "amount_paid": "0.00",
            "amount_due": "120.00",
        },
    }


def paid(event: dict[str, Any]) -> dict[str, Any]:
    inv = event["invoice"]
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "invoice.payment_recorded",
        "occurred_at": "2026-03-05T10:00:00+00:00",
        "tenant_id": event["tenant_id"],
        "company_ref": event["company_ref"],
        "livemode": False,
        "payment": {
            "payment_id": str(uuid.uuid4()),
            "invoice_id": inv["invoice_id"],
            "amount": "120.00",
            "currency": "GBP",
            "received_at": "2026-03-05T10:00:00+00:00",
            "method": "bank_transfer",
            "invoice_status": "paid",
        },
    }


async def publish_invoice(platform: Platform, tenant: Tenant, payload: dict[str, Any]) -> None:
    await platform.publish("invoicing.lifecycle.v1", payload, key=f"{tenant.tenant_id}:{tenant.company_ref}")


async def records(client: httpx.AsyncClient, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/notifications", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def add_contact(platform: Platform, tenant: Tenant, email: str) -> tuple[uuid.UUID, str]:
    """A client contact of the tenant's client, with their own bearer token."""
    user_id = uuid.uuid4()
    await platform.put(
        f"/v1/users/{user_id}",
        {
            "user_id": str(user_id),
            "email": email,
            "name": "Casey Contact",
            "role": "client_contact",
            "kind": "contact",
            "company_id": str(tenant.company_id),
        },
        token=tenant.token,
    )
    issued = await platform.catalog.post(f"/v1/users/{user_id}/api-keys", headers=tenant.auth)
    assert issued.status_code == 200, issued.text
    return user_id, await platform.token_for(issued.json()["api_key"])


async def known(client: httpx.AsyncClient, platform: Platform, tenant: Tenant, recipient: uuid.UUID) -> None:
    """Wait until notification's catalog read model has the recipient."""

    async def probe() -> bool:
        r = await client.get(f"/v1/notification-preferences/{recipient}", headers=tenant.auth)
        return r.status_code == 200

    await platform.wait_for(probe, timeout_s=60)


async def mails(platform: Platform, smtp: SmtpServer, address: str, *, containing: str, count: int = 1) -> list[Any]:
    """The messages to ``address`` whose subject contains ``containing``, once there are ``count`` of them."""

    async def probe() -> list[Any]:
        found = smtp.to(address, containing=containing)
        return found if len(found) >= count else []

    found: list[Any] = await platform.wait_for(probe, timeout_s=60)
    return found


class TestInvoicesAndReminders:
    async def test_a_finalized_invoice_is_emailed_to_the_billing_address_with_its_pdf_and_reminders_follow_the_schedule_until_paid(  # noqa: E501
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        await known(notification, platform, tenant, tenant.company_id)
        number = f"INV-2602-{uuid.uuid4().int % 10**5 + 10**5}"
        event = invoice_event(tenant, number)
        wrapper = {
            "event": event,
            "document": {"filename": f"{number}.pdf", "content_base64": base64.b64encode(PDF).decode()},
        }

        await publish_invoice(platform, tenant, wrapper)
        [mail] = await mails(platform, smtp, "ap@acme.example", containing=number)

        assert mail.subject == f"Invoice {number} from Northwind IT"
        assert mail.message["From"] == "Northwind IT <billing@northwind.example>"
        assert mail.attachments() == [(f"{number}.pdf", PDF)]
        assert "120.00 GBP" in mail.html()
        assert "due on 2026-03-03" in mail.html()

        # Schedule -7, 0, +7, +14 days around the due date 2026-03-03, due at midnight Europe/London.
        await platform.advance_clock(tenant, "2026-02-23T12:00:00+00:00")  # due - 8 days: nothing yet
        await platform.advance_clock(tenant, "2026-02-24T09:00:00+00:00")  # due - 7 days: first reminder
        first = await mails(platform, smtp, "ap@acme.example", containing=f"Payment reminder: invoice {number}")
        assert len(first) == 1
        await platform.advance_clock(tenant, "2026-03-03T09:00:00+00:00")  # the due date: second reminder
        both = await mails(platform, smtp, "ap@acme.example", containing=f"Payment reminder: invoice {number}", count=2)
        assert len(both) == 2

        await publish_invoice(platform, tenant, paid(event))
        await platform.advance_clock(tenant, "2026-03-10T09:00:00+00:00")  # +7: would be overdue, but paid
        await platform.advance_clock(tenant, "2026-03-18T09:00:00+00:00")  # +14
        await platform.advance_clock(tenant, "2026-03-19T09:00:00+00:00")  # waits until the +14 tick was consumed

        reminders = [
            r for r in await records(notification, tenant) if r["notification_type"] in ("payment_reminder", "overdue")
        ]
        assert sorted(r["event_id"].rsplit(":", 1)[1] for r in reminders) == ["-7", "0"]
        assert smtp.to("ap@acme.example", containing=f"Overdue: invoice {number}") == []
        sent = await records(notification, tenant, status="sent")
        assert {r["notification_type"] for r in sent} >= {"invoice_issued", "payment_reminder"}


class TestPreferencesAndChannels:
    async def test_preferences_a_client_contact_sets_are_respected_sms_and_signed_webhooks_arrive_and_redelivery_sends_nothing_twice(  # noqa: E501
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer, sink: HttpSink
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, sink)
        endpoint = uuid.uuid4()
        hook = await notification.put(
            f"/v1/webhook-endpoints/{endpoint}",
            json={"url": sink.url("/hook"), "secret": SECRET, "company_id": str(tenant.company_id)},
            headers=tenant.auth,
        )
        assert hook.status_code == 200, hook.text
        assert "secret" not in hook.json()
        contact_id, contact_token = await add_contact(platform, tenant, "casey@acme.example")
        contact = {"Authorization": f"Bearer {contact_token}"}
        await known(notification, platform, tenant, contact_id)
        sink.fail_first["/hook"] = 1  # the first webhook call fails: it must be retried, not lost

        # The contact: invoices to me by SMS and webhook, and no longer by email to the billing address.
        mine = await notification.put(
            f"/v1/notification-preferences/{contact_id}",
            json={
                "phone": "+447700900123",
                "preferences": [
                    {"notification_type": "invoice_issued", "channel": "sms", "enabled": True},
                    {"notification_type": "invoice_issued", "channel": "webhook", "enabled": True},
                ],
            },
            headers=contact,
        )
        billing = await notification.put(
            f"/v1/notification-preferences/{tenant.company_id}",
            json={"preferences": [{"notification_type": "invoice_issued", "channel": "email", "enabled": False}]},
            headers=contact,
        )
        assert (mine.status_code, billing.status_code) == (200, 200), (mine.text, billing.text)
        assert {
            (p["channel"], p["enabled"])
            for p in mine.json()["preferences"]
            if p["notification_type"] == "invoice_issued"
        } == {
            ("email", False),
            ("sms", True),
            ("webhook", True),
        }
        # ... but not the MSP's settings, nor a staff user's preferences.
        technician, _ = await platform.add_user(tenant, "technician")
        await known(notification, platform, tenant, technician)
        refused = await notification.put("/v1/notification-settings", json={"smtp_port": 1}, headers=contact)
        staff = await notification.put(
            f"/v1/notification-preferences/{technician}", json={"preferences": []}, headers=contact
        )
        assert (refused.status_code, staff.status_code) == (403, 403)

        number = f"INV-2602-{uuid.uuid4().int % 10**5 + 10**5}"
        event = invoice_event(tenant, number)
        await publish_invoice(platform, tenant, event)  # the bare InvoiceEvent: no PDF
        await publish_invoice(platform, tenant, event)  # redelivered: a second Kafka record, the same event

        async def delivered() -> bool:
            sms = [c for c in sink.at("/sms") if number in c.json()["body"]]
            hooks = [c for c in sink.at("/hook") if c.json()["data"]["invoice_number"] == number]
            return len(sms) >= 1 and len(hooks) >= 1

        await platform.wait_for(delivered, timeout_s=60)
        [sms] = [c for c in sink.at("/sms") if number in c.json()["body"]]
        assert sms.json()["to"] == "+447700900123"
        assert sms.json()["from"] == "Northwind"
        [failed_call] = [c for c in sink.at("/hook") if c.json()["data"]["invoice_number"] == number]
        assert verify(SECRET, failed_call.headers["x-signature"], failed_call.body)
        assert not verify("whsec_somebody_else_000", failed_call.headers["x-signature"], failed_call.body)

        # The failed webhook waits for its retry in billing time (5 minutes); the test clock brings it on.
        async def waiting() -> list[dict[str, Any]]:
            found = await records(notification, tenant, event_id=event["event_id"])
            return [r for r in found if r["channel"] == "webhook" and r["status"] == "retrying"]

        [record] = await platform.wait_for(waiting, timeout_s=60)
        assert record["last_error"] == "POST: the endpoint answered HTTP 500"  # not its body: generic for tenants
        await platform.advance_clock(tenant, "2026-02-02T00:00:00+00:00")

        async def retried() -> list[Any]:
            again = [c for c in sink.at("/hook") if c.json()["data"]["invoice_number"] == number]
            return again if len(again) == 2 else []

        first_call, second_call = await platform.wait_for(retried, timeout_s=60)
        assert second_call.body == first_call.body
        assert second_call.headers["x-notification-id"] == first_call.headers["x-notification-id"]
        assert verify(SECRET, second_call.headers["x-signature"], second_call.body)
        detail = await notification.get(f"/v1/notifications/{record['notification_id']}", headers=tenant.auth)
        assert [(a["attempt"], a["outcome"]) for a in detail.json()["attempts_log"]] == [(1, "failed"), (2, "sent")]

        # One notification per recipient and channel despite the redelivery; no email to the billing address.
        sent = await records(notification, tenant, event_id=event["event_id"])
        assert sorted((r["channel"], r["recipient_kind"]) for r in sent) == [("sms", "contact"), ("webhook", "contact")]
        assert smtp.to("ap@acme.example", containing=number) == []
        assert len([c for c in sink.at("/sms") if number in c.json()["body"]]) == 1

        # The contact sees their client's records, and the change is in the audit trail.
        theirs = await notification.get("/v1/notifications", headers=contact)
        assert {r["company_id"] for r in theirs.json()} == {str(tenant.company_id)}
        audited = await platform.fetch_as_tenant(
            "notification",
            tenant,
            "SELECT actor, entity_id FROM audit_log WHERE action = 'notification_preferences_changed' ORDER BY seq",
        )
        assert [(a["actor"], a["entity_id"]) for a in audited] == [
            (f"user:{contact_id}", str(contact_id)),
            (f"user:{contact_id}", str(tenant.company_id)),
        ]


class TestAlertsAndApprovals:
    async def test_an_overage_alert_reaches_the_client_and_an_approval_request_its_approvers_but_not_its_requester(
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        approver, _ = await platform.add_user(tenant, "approver", user_ref="mgr.omar")
        requester, _ = await platform.add_user(tenant, "approver", user_ref="tech.jane")
        technician, _ = await platform.add_user(tenant, "technician")
        for who in (approver, requester, technician, tenant.company_id):
            await known(notification, platform, tenant, who)
        emails = {
            r: (await notification.get(f"/v1/notification-preferences/{r}", headers=tenant.auth)).json()["email"]
            for r in (approver, requester, technician)
        }

        crossed = {
            "event_id": str(uuid.uuid4()),
            "tenant_id": str(tenant.tenant_id),
            "company_id": str(tenant.company_id),
            "company_ref": tenant.company_ref,
            "subject": "bucket",
            "assignment_id": str(uuid.uuid4()),
            "plan_id": str(uuid.uuid4()),
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "level_percent": "100",
            "limit": "20",
            "total": "21.5",
            "unit": "hour",
            "livemode": False,
        }
        await platform.publish("rating.thresholds.v1", crossed, key=f"{tenant.tenant_id}:{tenant.company_ref}")
        pending = {
            "notice_id": str(uuid.uuid4()),
            "request_id": str(uuid.uuid4()),
            "tenant_id": str(tenant.tenant_id),
            "item_type": "time_entry",
            "item_id": f"cw-{uuid.uuid4().hex[:8]}",
            "company_ref": tenant.company_ref,
            "reason": "requested",
            "step": 1,
            "of_steps": 1,
            "roles": ["approver"],
            "summary": "9.5 h by tech.jane on T-20931",
            "requested_by": "tech.jane",
            "occurred_at": "2026-01-31T10:31:00+00:00",
        }
        await platform.publish("approvals.pending.v1", pending, key=f"{tenant.tenant_id}:time_entry:x")

        [alert] = await mails(platform, smtp, "ap@acme.example", containing="Usage alert: 100% of")
        assert "21.5 hour of the 20" in alert.html()
        [ask] = await mails(platform, smtp, emails[approver], containing="Approval needed: 9.5 h by tech.jane")
        assert "time_entry" in ask.html()
        asked = await records(notification, tenant, event_id=pending["notice_id"])
        assert [(r["recipient_id"], r["channel"]) for r in asked] == [(str(approver), "email")]
        assert smtp.to(emails[requester], containing="Approval needed") == []
        assert smtp.to(emails[technician], containing="Approval needed") == []


class TestTemplatesAndAudit:
    async def test_a_tenant_template_is_checked_then_used_and_every_mutating_route_is_audited(
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        await known(notification, platform, tenant, tenant.company_id)
        path = "/v1/notification-templates/overage_alert/email"

        bad = await notification.put(path, json={"subject": "{{ invoice_number }}", "body": "x"}, headers=tenant.auth)
        good = await notification.put(
            path,
            json={"subject": "Heads up {{ customer }}: {{ level_percent }}%", "body": "<p>{{ customer }}</p>"},
            headers=tenant.auth,
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "subject"]
        assert good.status_code == 200, good.text
        hook = await notification.put(
            f"/v1/webhook-endpoints/{uuid.uuid4()}",
            json={"url": "http://127.0.0.1:9/never", "secret": SECRET, "types": ["approval_requested"]},
            headers=tenant.auth,
        )
        assert hook.status_code == 200, hook.text
        crossed = {
            "event_id": str(uuid.uuid4()),
            "tenant_id": str(tenant.tenant_id),
            "company_id": str(tenant.company_id),
            "company_ref": tenant.company_ref,
            "subject": "usage",
            "assignment_id": str(uuid.uuid4()),
            "plan_id": str(uuid.uuid4()),
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "level_percent": "120",
            "limit": "10",
            "total": "12",
            "unit": "device",
            "livemode": False,
        }
        await platform.publish("rating.thresholds.v1", crossed, key=f"{tenant.tenant_id}:{tenant.company_ref}")

        [mail] = await mails(platform, smtp, "ap@acme.example", containing="Heads up Acme Dental: 120%")
        # the tenant's body, then the unsubscribe footer no template can drop (an alert is not transactional)
        body, footer = mail.html().strip().split("<p style=", 1)
        assert body == "<p>Acme Dental</p>"
        assert "Unsubscribe</a>" in footer
        reset = await notification.delete(path, headers=tenant.auth)
        assert reset.json() == {"changed": True}
        actions = await platform.fetch_as_tenant(
            "notification", tenant, "SELECT action, actor FROM audit_log ORDER BY seq"
        )
        assert [a["action"] for a in actions] == [
            "notification_settings_changed",
            "notification_template_saved",
            "webhook_endpoint_created",
            "notification_template_reset",
        ]
        assert {a["actor"] for a in actions} == {actions[0]["actor"]}
        assert actions[0]["actor"].startswith("user:")


def overdue_notice(event: dict[str, Any], occurred_at: str) -> dict[str, Any]:
    """invoicing's InvoiceNotice for invoice.overdue (it carries no InvoiceEvent), as invoicing publishes it."""
    inv = event["invoice"]
    return {
        "notice_id": str(uuid.uuid4()),
        "notice_type": "invoice.overdue",
        "occurred_at": occurred_at,
        "tenant_id": event["tenant_id"],
        "company_id": str(uuid.uuid4()),
        "company_ref": event["company_ref"],
        "livemode": False,
        "invoice_id": inv["invoice_id"],
        "invoice_number": inv["invoice_number"],
        "status": "overdue",
        "billing_email": inv["customer"]["billing_email"],
        "currency": "GBP",
        "amount_due": "120.00",
        "detail": None,
        "event": None,
        "attachment": None,
    }


async def outcomes(platform: Platform, notification_id: str, *, count: int = 1) -> list[dict[str, Any]]:
    return await platform.messages(
        "notification.deliveries.v1", where=lambda d: d["notification_id"] == notification_id, count=count
    )


class TestOverdueNotices:
    async def test_invoicings_overdue_notice_is_sent_by_preference_once_a_day_beside_the_reminder_schedule(
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        await known(notification, platform, tenant, tenant.company_id)
        number = f"INV-2602-{uuid.uuid4().int % 10**5 + 10**5}"
        event = invoice_event(tenant, number)  # due 2026-03-03
        await publish_invoice(platform, tenant, event)
        [issued] = await mails(platform, smtp, "ap@acme.example", containing=f"Invoice {number}")
        assert issued.message["List-Unsubscribe"] is None  # invoices are transactional: no unsubscribe link

        # Invoicing marks it overdue on the first tick of 2026-03-04 (one day past due): an `overdue` email.
        notice = overdue_notice(event, "2026-03-04T00:00:30+00:00")
        await publish_invoice(platform, tenant, notice)
        [overdue] = await mails(platform, smtp, "ap@acme.example", containing=f"Overdue: invoice {number}")
        assert "(1 days ago)" in overdue.html()
        assert overdue.message["List-Unsubscribe"] is not None

        # Later that day the schedule's 0-day stage (and the -7 one) fall due: already told today, nothing sent.
        await platform.advance_clock(tenant, "2026-03-04T09:00:00+00:00")
        # A week past due, another day: the schedule's +7 stage is sent as usual.
        await platform.advance_clock(tenant, "2026-03-10T09:00:00+00:00")
        both = await mails(platform, smtp, "ap@acme.example", containing=f"Overdue: invoice {number}", count=2)
        await platform.advance_clock(tenant, "2026-03-11T09:00:00+00:00")  # waits until the +7 tick was consumed

        assert len(both) == 2
        assert "(7 days ago)" in both[1].html()
        assert smtp.to("ap@acme.example", containing=f"Payment reminder: invoice {number}") == []
        kinds = sorted(
            (r["notification_type"], r["event_id"])
            for r in await records(notification, tenant)
            if r["notification_type"] in ("payment_reminder", "overdue")
        )
        assert kinds == sorted(
            [("overdue", notice["notice_id"]), ("overdue", f"reminder:{event['invoice']['invoice_id']}:7")]
        )
        stages = await platform.fetch_as_tenant(
            "notification", tenant, "SELECT offset_days, outcome FROM reminder_stages ORDER BY offset_days"
        )
        assert [(s["offset_days"], s["outcome"]) for s in stages] == [
            (-7, "skipped"),
            (0, "skipped"),  # the same day as the overdue notice
            (1, "sent"),  # the overdue notice
            (7, "sent"),
        ]

        # Each delivery's outcome is published for invoicing's `sent` status and dashboards.
        [record] = await records(notification, tenant, event_id=notice["notice_id"])
        [outcome] = await outcomes(platform, record["notification_id"])
        assert (outcome["status"], outcome["channel"], outcome["notification_type"]) == ("sent", "email", "overdue")
        assert (outcome["invoice_id"], outcome["attempt"], outcome["address"]) == (
            event["invoice"]["invoice_id"],
            1,
            "ap@acme.example",
        )


class TestBouncesAndUnsubscribe:
    async def test_a_hard_bounce_suppresses_the_address_and_a_signed_link_unsubscribes_a_contact_from_that_type(
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        contact_id, _ = await add_contact(platform, tenant, f"casey-{uuid.uuid4().hex[:6]}@acme.example")
        await known(notification, platform, tenant, tenant.company_id)
        await known(notification, platform, tenant, contact_id)
        casey = (await notification.get(f"/v1/notification-preferences/{contact_id}", headers=tenant.auth)).json()
        casey_email = casey["email"]

        def crossed(level: str) -> dict[str, Any]:
            return {
                "event_id": str(uuid.uuid4()),
                "tenant_id": str(tenant.tenant_id),
                "company_id": str(tenant.company_id),
                "company_ref": tenant.company_ref,
                "subject": "usage",
                "assignment_id": str(uuid.uuid4()),
                "plan_id": str(uuid.uuid4()),
                "period_start": "2026-01-01",
                "period_end": "2026-02-01",
                "level_percent": level,
                "limit": "10",
                "total": "12",
                "unit": "device",
                "livemode": False,
            }

        # casey also wants overage alerts by SMS but gave no phone number: recorded failed, outcome published
        sms = await notification.put(
            f"/v1/notification-preferences/{contact_id}",
            json={"preferences": [{"notification_type": "overage_alert", "channel": "sms", "enabled": True}]},
            headers=tenant.auth,
        )
        assert sms.status_code == 200, sms.text

        first = crossed("100")
        await platform.publish("rating.thresholds.v1", first, key=f"{tenant.tenant_id}:{tenant.company_ref}")
        [to_billing] = await mails(platform, smtp, "ap@acme.example", containing="Usage alert: 100% of")
        [to_casey] = await mails(platform, smtp, casey_email, containing="Usage alert: 100% of")

        # Every client-facing email but invoices carries a signed link, per recipient and type.
        link = to_casey.message["List-Unsubscribe"].strip("<>")
        assert to_casey.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert link.replace("&", "&amp;") in to_casey.html()
        url = httpx.URL(link)
        assert (url.params["recipient"], url.params["type"]) == (str(contact_id), "overage_alert")
        billing_link = httpx.URL(to_billing.message["List-Unsubscribe"].strip("<>"))
        forged = url.copy_set_param("sig", billing_link.params["sig"])  # the billing address's signature
        for bad in (forged, url.copy_set_param("type", "upcoming_renewal"), url.copy_set_param("sig", "0" * 64)):
            refused = await notification.post(bad.path, params=bad.params)
            assert refused.status_code == 403, refused.text
        done = await notification.post(url.path, params=url.params)  # one click, no token
        assert done.status_code == 200, done.text
        prefs = (await notification.get(f"/v1/notification-preferences/{contact_id}", headers=tenant.auth)).json()
        assert {
            (p["channel"], p["enabled"], p["default"])
            for p in prefs["preferences"]
            if p["notification_type"] == "overage_alert"
        } == {("email", False, False), ("sms", False, False), ("webhook", False, False)}

        # The MTA reports the billing address as gone for good, against the message it bounced (and twice).
        [billing_record] = [
            r
            for r in await records(notification, tenant, event_id=first["event_id"])
            if r["recipient_id"] == str(tenant.company_id)
        ]
        bounce = {
            "address": "AP@acme.example",
            "kind": "hard",
            "reason": "550 5.1.1 no such user",
            "notification_id": billing_record["notification_id"],
            "report_id": "esp-evt-1",
        }
        unauthenticated = await notification.post("/v1/bounces", json=bounce)
        reported = await notification.post("/v1/bounces", json=bounce, headers=tenant.auth)
        repeated = await notification.post("/v1/bounces", json=bounce, headers=tenant.auth)
        soft = await notification.post(
            "/v1/bounces",
            json={"address": casey_email, "kind": "soft", "reason": "452 mailbox full"},
            headers=tenant.auth,
        )
        assert unauthenticated.status_code == 401
        assert (reported.status_code, repeated.status_code, soft.status_code) == (200, 200, 200)
        assert (reported.json()["recorded"], reported.json()["suppressed"]) == (True, True)
        assert (repeated.json()["recorded"], len(repeated.json()["bounces"])) == (False, 1)
        assert (soft.json()["recorded"], soft.json()["suppressed"]) == (True, False)

        second = crossed("120")
        await platform.publish("rating.thresholds.v1", second, key=f"{tenant.tenant_id}:{tenant.company_ref}")

        async def suppressed() -> list[dict[str, Any]]:
            found = await records(notification, tenant, event_id=second["event_id"])
            return [r for r in found if r["status"] == "suppressed"]

        [gone] = await platform.wait_for(suppressed, timeout_s=60)
        assert gone["recipient_id"] == str(tenant.company_id)
        assert gone["last_error"].startswith("suppressed: ap@acme.example hard-bounced on ")
        assert "550 5.1.1 no such user" in gone["last_error"]
        # casey unsubscribed from overage alerts: nothing recorded for them; nothing reached either address
        assert [r["recipient_id"] for r in await records(notification, tenant, event_id=second["event_id"])] == [
            str(tenant.company_id)
        ]
        assert smtp.to("ap@acme.example", containing="Usage alert: 120% of") == []
        assert smtp.to(casey_email, containing="Usage alert: 120% of") == []

        [no_phone] = [
            r for r in await records(notification, tenant, event_id=first["event_id"]) if r["channel"] == "sms"
        ]
        [never_sent] = await outcomes(platform, no_phone["notification_id"])
        assert (never_sent["status"], never_sent["attempt"], never_sent["error"]) == ("failed", 0, "no phone number")
        sent, bounced = await outcomes(platform, billing_record["notification_id"], count=2)
        assert (sent["status"], bounced["status"]) == ("sent", "bounced")
        assert bounced["error"] == "hard bounce: 550 5.1.1 no such user"
        [was_suppressed] = await outcomes(platform, gone["notification_id"])
        assert (was_suppressed["status"], was_suppressed["attempt"]) == ("suppressed", 0)
        [bounced_record] = await records(notification, tenant, status="bounced")
        assert bounced_record["notification_id"] == billing_record["notification_id"]

        audited = await platform.fetch_as_tenant(
            "notification",
            tenant,
            """SELECT action, actor, entity_id FROM audit_log
               WHERE action IN ('notification_unsubscribed', 'email_bounced') ORDER BY seq""",
        )
        assert [(a["action"], a["entity_id"]) for a in audited] == [
            ("notification_unsubscribed", str(contact_id)),
            ("email_bounced", "ap@acme.example"),
            ("email_bounced", casey_email),
        ]
        assert audited[0]["actor"] == f"unsubscribe-link:{contact_id}"
        assert audited[1]["actor"].startswith("user:")


class TestApprovalThroughTheApprovalsService:
    async def test_a_long_time_entry_request_reaches_the_approvers_of_its_step_by_email(
        self, platform: Platform, notification: httpx.AsyncClient, smtp: SmtpServer
    ) -> None:
        tenant = await platform.sandbox_tenant()
        await configure(notification, tenant, smtp, None)
        approver, _ = await platform.add_user(tenant, "approver", user_ref=f"mgr-{uuid.uuid4().hex[:6]}")
        manager, _ = await platform.add_user(tenant, "billing_manager")
        technician, _ = await platform.add_user(tenant, "technician", user_ref="tech.jane")
        for who in (approver, manager, technician):
            await known(notification, platform, tenant, who)
        emails = {
            r: (await notification.get(f"/v1/notification-preferences/{r}", headers=tenant.auth)).json()["email"]
            for r in (approver, manager, technician)
        }
        # A 9.5 h entry, requested on approvals.requests.v1 exactly as metering requests one (> 8 h by default);
        # the approvals service applies the tenant's rule and announces its first step on approvals.pending.v1.
        entry = f"cw-time-{uuid.uuid4().hex[:8]}"
        request = {
            "request_id": str(uuid.uuid4()),
            "tenant_id": str(tenant.tenant_id),
            "item_type": "time_entry",
            "item_id": entry,
            "company_ref": tenant.company_ref,
            "requesting_service": "metering",
            "requested_by": "tech.jane",
            "trigger_field": "hours",
            "trigger_value": "9.5",
            "summary": f"9.5 h by tech.jane on T-20931 ({tenant.company_ref})",
            "requested_at": "2026-01-12T09:00:00+00:00",
            "details": {"ticket": "T-20931"},
        }
        await platform.publish("approvals.requests.v1", request, key=f"{tenant.tenant_id}:time_entry:{entry}")

        [pending] = await platform.messages(
            "approvals.pending.v1", where=lambda d: d["request_id"] == request["request_id"]
        )
        assert (pending["step"], sorted(pending["roles"])) == (1, ["approver", "billing_manager"])
        for who in (approver, manager):
            [ask] = await mails(platform, smtp, emails[who], containing="Approval needed: 9.5 h by tech.jane")
            assert entry in ask.html()
            assert ask.message["List-Unsubscribe"] is None  # staff email: not client-facing
        asked = await records(notification, tenant, event_id=pending["notice_id"])
        assert sorted(r["recipient_id"] for r in asked) == sorted([str(approver), str(manager)])
        assert smtp.to(emails[technician], containing="Approval needed") == []


# Every mutating route and the spec above that checks its audit row.
AUDITED_ROUTES = {
    "PUT /v1/notification-preferences/{recipient_id}": "TestPreferencesAndChannels (notification_preferences_changed)",
    "PUT /v1/notification-settings": "TestTemplatesAndAudit (notification_settings_changed)",
    "PUT /v1/webhook-endpoints/{endpoint_id}": "TestTemplatesAndAudit (webhook_endpoint_created)",
    "PUT /v1/notification-templates/{notification_type}/{channel}": "TestTemplatesAndAudit (template_saved)",
    "DELETE /v1/notification-templates/{notification_type}/{channel}": "TestTemplatesAndAudit (template_reset)",
    "POST /v1/bounces": "TestBouncesAndUnsubscribe (email_bounced)",
    "POST /v1/unsubscribe": "TestBouncesAndUnsubscribe (notification_unsubscribed)",
}


class TestEveryMutatingRouteIsAudited:
    async def test_every_mutating_route_has_a_spec_checking_its_audit_row(
        self, notification: httpx.AsyncClient
    ) -> None:
        response = await notification.get("/openapi.json")
        assert response.status_code == 200, response.text
        routes = {
            f"{method.upper()} {path}"
            for path, operations in response.json()["paths"].items()
            if path.startswith("/v1/")
            for method in operations
            if method in ("put", "post", "delete", "patch")
        }
        assert routes == set(AUDITED_ROUTES)
        # GET /v1/unsubscribe changes preferences too (opening the link): the same use case as its POST
        assert "get" in response.json()["paths"]["/v1/unsubscribe"]
