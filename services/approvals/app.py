"""Approvals's composition root. Its domain arrives with its own issue; the process, schema, roles,
migrations, health, metrics and documents are in place so it runs and scales like every other service."""

from __future__ import annotations

from fastapi import FastAPI

from services.approvals.settings import ApprovalsSettings
from shared.runtime import ServiceRuntime


def create_app(settings: ApprovalsSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        title="Approvals",
        description="Approval rules, requests and multi-step decisions that keep unapproved data out of billing.",
    )
    runtime.http_app.state.runtime = runtime
    return runtime.http_app
