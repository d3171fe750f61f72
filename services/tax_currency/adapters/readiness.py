"""Tax-currency's readiness for a tenant (GET /v1/readiness): its API answers 409 for a tenant and 422 on
`company_id` for a client that are not in its catalog view yet."""

from __future__ import annotations

from shared.readiness import ReadModelCheck

READINESS = ReadModelCheck(
    service="tax_currency",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    company_by_id="""SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_id = $2
                     AND NOT deleted)""",
    company_by_ref="""SELECT EXISTS (SELECT 1 FROM companies WHERE tenant_id = $1 AND company_ref = $2
                      AND NOT deleted)""",
)
