-- depends: 0003_bucket_revisions

-- A snapshot is the count in force until the next one (billing.usage.v1): a period's close looks up, per client
-- and service, the latest snapshot before the span it prices (the count carried in).
CREATE INDEX rated_snapshots_by_client ON rated_records (tenant_id, company_id, service_id, occurred_at DESC, record_id DESC)
    WHERE record_type = 'usage' AND document ->> 'kind' = 'snapshot';
