"""Rating's readiness for a tenant (GET /v1/readiness): records of a tenant or client not in its catalog view
are parked unrated, and a tick for a tenant it has not seen waits."""

from __future__ import annotations

from shared.readiness import ReadModelCheck

READINESS = ReadModelCheck(
    service="rating",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    company_by_id="""SELECT EXISTS (SELECT 1 FROM catalog_entities WHERE tenant_id = $1 AND entity_type = 'company'
                     AND entity_id = $2)""",
    company_by_ref="""SELECT EXISTS (SELECT 1 FROM catalog_entities WHERE tenant_id = $1 AND entity_type = 'company'
                      AND state ->> 'company_ref' = $2)""",
)
