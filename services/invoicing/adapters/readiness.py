"""Invoicing's readiness for a tenant (GET /v1/readiness): a period of a tenant or client not in its catalog
view waits, and without the tenant's approval rules every credit, refund and adjustment is sent for approval."""

from __future__ import annotations

from shared.readiness import ReadModelCheck, Requirement

READINESS = ReadModelCheck(
    service="invoicing",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    company_by_id="SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_id = $2)",
    company_by_ref="SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND state ->> 'company_ref' = $2)",
    also=(
        Requirement(
            "approval_rules",
            "SELECT EXISTS (SELECT 1 FROM approval_rule_sets WHERE tenant_id = $1)",
            "approvals' rules for this tenant have not reached invoicing yet: until they do, every credit, "
            "refund and billing adjustment is sent for approval",
        ),
    ),
)
