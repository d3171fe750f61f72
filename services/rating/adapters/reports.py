"""The SQL behind rating's bucket-usage report: rating's own tables (bucket_usage, charges, catalog view)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from services.rating.domain.reports import SettledBucket
from shared.db.pool import DbConnection


class ReportsRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def settled_buckets(self, start: date, end: date, company_id: UUID | None) -> list[SettledBucket]:
        """Bucket periods starting in ``[start, end)`` (of one client, if given), with their charged overage."""
        rows = await self._conn.fetch(
            """
            SELECT b.*, co.state ->> 'name' AS company_name, (a.state ->> 'plan_id')::uuid AS plan_id,
                   p.state ->> 'name' AS plan_name,
                   coalesce(p.state ->> 'currency', ch.currency) AS currency, ch.amount AS charged
            FROM bucket_usage b
            LEFT JOIN catalog_entities co
                   ON co.tenant_id = b.tenant_id AND co.entity_type = 'company' AND co.entity_id = b.company_id
            LEFT JOIN catalog_entities a
                   ON a.tenant_id = b.tenant_id AND a.entity_type = 'assignment' AND a.entity_id = b.assignment_id
            LEFT JOIN catalog_entities p
                   ON p.tenant_id = b.tenant_id AND p.entity_type = 'plan'
                  AND p.entity_id = (a.state ->> 'plan_id')::uuid
            LEFT JOIN LATERAL (
                SELECT sum(c.amount) AS amount, min(c.currency) AS currency FROM charges c
                WHERE c.tenant_id = b.tenant_id
                  AND c.rule_key = 'bucket:' || b.assignment_id::text || ':' || to_char(b.period_start, 'YYYY-MM-DD')
            ) ch ON true
            WHERE b.period_start >= $1 AND b.period_start < $2 AND ($3::uuid IS NULL OR b.company_id = $3)
            """,
            start,
            end,
            company_id,
        )
        return [
            SettledBucket(
                company_id=r["company_id"],
                company_name=r["company_name"],
                assignment_id=r["assignment_id"],
                plan_id=r["plan_id"],
                plan_name=r["plan_name"],
                period_start=r["period_start"],
                period_end=r["period_end"],
                allocation=r["allocation"],
                rolled_in=r["rolled_in"],
                used=r["used"],
                overage=r["overage"],
                remaining=r["remaining"],
                rolled_out=r["rolled_out"],
                expired=r["expired"],
                charged=r["charged"],
                currency=r["currency"].strip() if r["currency"] else None,
            )
            for r in rows
        ]
