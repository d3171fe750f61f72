-- depends: 0001_rating

-- Every accepted record rating has seen, once (a redelivery finds its row and changes nothing), with what
-- rating did with it: charged on arrival, priced at the period's close, used against a bucket, or recorded
-- and not charged (non-billable time, a suspended or cancelled day, a service inside a bundle).
CREATE TABLE rated_records (
    tenant_id     uuid        NOT NULL,
    record_id     uuid        NOT NULL,
    record_type   text        NOT NULL CHECK (record_type IN ('usage', 'time')),
    company_id    uuid        NOT NULL,
    service_id    uuid        NOT NULL,
    assignment_id uuid,
    period_start  date        NOT NULL,  -- the record's own period (billing period, or bucket period)
    occurred_at   timestamptz NOT NULL,
    quantity      numeric     NOT NULL,  -- usage quantity, or billable hours
    disposition   text        NOT NULL CHECK (disposition IN
                    ('charged', 'at_close', 'bucket', 'non_billable', 'not_billed_status', 'in_bundle')),
    note          text,
    document      jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, record_id)
);
COMMENT ON TABLE rated_records IS '@append-only';
CREATE INDEX rated_records_by_line ON rated_records (tenant_id, assignment_id, service_id, period_start)
    WHERE disposition IN ('at_close', 'bucket');

-- Which pricing rule each charge belongs to (a line's period, a fixed fee's cycle, a bucket period), so a
-- re-rating compares with what was already sent and emits only the difference.
ALTER TABLE charges ADD COLUMN rule_key text;
CREATE INDEX charges_by_rule ON charges (tenant_id, rule_key) WHERE rule_key IS NOT NULL;
COMMENT ON TABLE charges IS '@append-only';

-- One row per settled bucket period: the bucket usage record of a client and period.
CREATE TABLE bucket_usage (
    tenant_id     uuid    NOT NULL,
    assignment_id uuid    NOT NULL,
    period_start  date    NOT NULL,
    period_end    date    NOT NULL,
    company_id    uuid    NOT NULL,
    allocation    numeric NOT NULL,
    rolled_in     numeric NOT NULL,
    used          numeric NOT NULL,
    overage       numeric NOT NULL,
    remaining     numeric NOT NULL,
    rolled_out    numeric NOT NULL,
    expired       numeric NOT NULL,
    carried       jsonb   NOT NULL,  -- the lots carried out: [{"hours": "5", "periods_left": 2}]
    PRIMARY KEY (tenant_id, assignment_id, period_start)
);
COMMENT ON TABLE bucket_usage IS '@append-only';

-- Threshold levels already published, so each is published once per subject and period.
CREATE TABLE threshold_crossings (
    tenant_id    uuid    NOT NULL,
    subject      text    NOT NULL,  -- bucket:<assignment> or usage:<assignment>:<service>
    period_start date    NOT NULL,
    level        numeric NOT NULL,
    PRIMARY KEY (tenant_id, subject, period_start, level)
);
COMMENT ON TABLE threshold_crossings IS '@append-only';

CALL enable_tenant_isolation('rated_records', 'bucket_usage', 'threshold_crossings');
