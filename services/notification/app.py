"""Notification's composition root. Its domain arrives with its own issue; the process, schema, roles,
migrations, health, metrics and documents are in place so it runs and scales like every other service."""

from __future__ import annotations

from fastapi import FastAPI

from services.notification.settings import NotificationSettings
from shared.runtime import ServiceRuntime


def create_app(settings: NotificationSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        title="Notification",
        description="Client and staff notifications by email, SMS and signed webhooks, exactly once.",
    )
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
