"""Metering's readiness for a tenant (GET /v1/readiness): its catalog copy maps upstream refs to clients (an
unknown one leaves records unmapped), and the tenant's approval rules decide which records are held."""

from __future__ import annotations

from shared.readiness import ReadModelCheck, Requirement

READINESS = ReadModelCheck(
    service="metering",
    tenant="SELECT EXISTS (SELECT 1 FROM known_tenants WHERE tenant_id = $1)",
    company_by_id="SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_id = $2)",
    company_by_ref="""SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_ref = $2)
                      OR EXISTS (SELECT 1 FROM company_refs WHERE tenant_id = $1 AND ref = $2)""",
    also=(
        Requirement(
            "approval_rules",
            "SELECT EXISTS (SELECT 1 FROM approval_rules WHERE tenant_id = $1)",
            "approvals' rules for this tenant have not reached metering yet: until they do, no time entry or "
            "usage report is held for approval",
        ),
    ),
)
