"""Notification's readiness for a tenant (GET /v1/readiness): whom to write to comes from its catalog view
of the tenant and its clients."""

from __future__ import annotations

from shared.readiness import ReadModelCheck

READINESS = ReadModelCheck(
    service="notification",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    company_by_id="SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_id = $2)",
    company_by_ref="SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_ref = $2)",
)
