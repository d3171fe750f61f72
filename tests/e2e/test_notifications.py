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
        assert record["last_error"].endswith("HTTP 500 try later")
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
        assert mail.html().strip() == "<p>Acme Dental</p>"
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
