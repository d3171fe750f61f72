"""Catalog's readiness for a tenant (GET /v1/readiness): the source of clients, and the holder of the tenant's
approval rules, without which every discount saved is sent for approval (the gate fails closed)."""

from __future__ import annotations

from shared.readiness import ReadModelCheck, Requirement

READINESS = ReadModelCheck(
    service="catalog",
    view="the catalog",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    company_by_id="""SELECT EXISTS (SELECT 1 FROM entities WHERE tenant_id = $1 AND entity_type = 'company'
                     AND entity_id = $2 AND NOT deleted)""",
    company_by_ref="""SELECT EXISTS (SELECT 1 FROM entities WHERE tenant_id = $1 AND entity_type = 'company'
                      AND state ->> 'company_ref' = $2 AND NOT deleted)""",
    also=(
        Requirement(
            "approval_rules",
            "SELECT EXISTS (SELECT 1 FROM approval_rules WHERE tenant_id = $1)",
            "approvals' rules for this tenant have not reached catalog yet: until they do, every discount saved "
            "is pending approval",
        ),
    ),
)
