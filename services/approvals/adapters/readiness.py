"""Approvals' readiness for a tenant (GET /v1/readiness): it keeps no clients (a question about one is ready
here), but a tenant it has not heard of has no rules yet, and requests for it wait."""

from __future__ import annotations

from shared.readiness import ReadModelCheck, Requirement

READINESS = ReadModelCheck(
    service="approvals",
    tenant="SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)",
    also=(
        Requirement(
            "approval_rules",
            "SELECT EXISTS (SELECT 1 FROM rule_sets WHERE tenant_id = $1)",
            "this tenant's default approval rules have not been created yet",
        ),
    ),
)
