-- depends: 0002_rating_engine

-- A bucket period can be settled again: a late time entry changes its usage and so what rolls into every later
-- period. Each settlement is kept (append-only) as a revision; the latest revision of a period is its bucket
-- usage record, the earlier ones say what the charges already sent were based on.
ALTER TABLE bucket_usage ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1);
ALTER TABLE bucket_usage DROP CONSTRAINT bucket_usage_pkey;
ALTER TABLE bucket_usage ADD PRIMARY KEY (tenant_id, assignment_id, period_start, revision);
