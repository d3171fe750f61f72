-- depends: 0004_snapshots_in_force

-- Every snapshot count rating has seen, whatever it did with the record: a count is the client's count in force
-- until the next one, whether or not a plan covered its day (docs/billing-rules.md §3). A count reported before
-- the client's plan starts is parked in unrated_records (no plan in force) and never reached rated_records, so
-- the count carried into the plan's first period was lost; this table keeps the history on its own.
CREATE TABLE snapshot_counts (
    tenant_id   uuid        NOT NULL,
    record_id   uuid        NOT NULL,
    company_id  uuid        NOT NULL,
    service_id  uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    quantity    numeric     NOT NULL,
    PRIMARY KEY (tenant_id, record_id)
);
COMMENT ON TABLE snapshot_counts IS '@append-only';
CREATE INDEX snapshot_counts_by_client ON snapshot_counts (tenant_id, company_id, service_id, occurred_at DESC, record_id DESC);

-- The counts seen so far, rated or parked. RLS is forced on the owner too, so it is lifted for the copy only
-- (inside this migration's transaction) and the new table is isolated after it.
ALTER TABLE rated_records NO FORCE ROW LEVEL SECURITY;
ALTER TABLE unrated_records NO FORCE ROW LEVEL SECURITY;
INSERT INTO snapshot_counts (tenant_id, record_id, company_id, service_id, occurred_at, quantity)
SELECT tenant_id, record_id, company_id, service_id, occurred_at, quantity
  FROM rated_records WHERE record_type = 'usage' AND document ->> 'kind' = 'snapshot';
INSERT INTO snapshot_counts (tenant_id, record_id, company_id, service_id, occurred_at, quantity)
SELECT tenant_id, record_id, (document ->> 'company_id')::uuid, (document ->> 'service_id')::uuid,
       (document ->> 'occurred_at')::timestamptz, (document ->> 'quantity')::numeric
  FROM unrated_records
 WHERE document ->> 'record_type' = 'usage' AND document ->> 'kind' = 'snapshot'
   AND document ->> 'company_id' IS NOT NULL AND document ->> 'service_id' IS NOT NULL
ON CONFLICT DO NOTHING;
ALTER TABLE rated_records FORCE ROW LEVEL SECURITY;
ALTER TABLE unrated_records FORCE ROW LEVEL SECURITY;
CALL enable_tenant_isolation('snapshot_counts');

DROP INDEX rated_snapshots_by_client;
