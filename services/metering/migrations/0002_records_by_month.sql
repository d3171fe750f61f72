-- depends: 0001_metering

-- The first version's unpartitioned table moves aside; its rows are copied below.
ALTER TABLE usage_records RENAME TO usage_records_v1;
ALTER INDEX usage_records_pkey RENAME TO usage_records_v1_pkey;

-- The idempotency key of both public topics, in its own unpartitioned table so it holds across the
-- monthly partitions of the raw-record tables (a re-sent record with another timestamp must still be
-- found): (source, event_id) for usage, (source, entry_id) for time. It also locates the raw row
-- (record_id, occurred_at: the partition key) and keeps the content fingerprint that tells a duplicate
-- from a conflict.
CREATE TABLE record_keys (
    tenant_id   uuid        NOT NULL,
    record_type text        NOT NULL CHECK (record_type IN ('usage', 'time')),
    source      text        NOT NULL,
    external_id text        NOT NULL,
    record_id   uuid        NOT NULL,
    fingerprint text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, record_type, source, external_id)
);
CREATE UNIQUE INDEX record_keys_record ON record_keys (tenant_id, record_id);

-- Usage records, by month of occurred_at. Status: accepted (published to rating), unmapped (waiting for
-- the catalog), held (waiting for an approval decision), rejected (an approver refused it; never billed).
CREATE TABLE usage_records (
    tenant_id     uuid        NOT NULL,
    record_id     uuid        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    source        text        NOT NULL,
    event_id      text        NOT NULL,
    fingerprint   text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('accepted', 'unmapped', 'held', 'rejected')),
    reason        text,
    reason_code   text,
    company_ref   text        NOT NULL,
    service_ref   text        NOT NULL,
    company_id    uuid,
    service_id    uuid,
    kind          text        NOT NULL DEFAULT 'delta',
    quantity      numeric     NOT NULL,
    unit          text,
    no_active_plan boolean    NOT NULL DEFAULT false,
    request_id    uuid,
    decided_by    text,
    received_at   timestamptz NOT NULL,
    payload       jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, record_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE time_entries (
    tenant_id     uuid        NOT NULL,
    record_id     uuid        NOT NULL,
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    source        text        NOT NULL,
    entry_id      text        NOT NULL,
    fingerprint   text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('accepted', 'unmapped', 'held', 'rejected')),
    reason        text,
    reason_code   text,
    company_ref   text        NOT NULL,
    service_ref   text        NOT NULL,
    user_ref      text        NOT NULL,
    company_id    uuid,
    service_id    uuid,
    user_id       uuid,
    hours         numeric     NOT NULL,
    billable      boolean     NOT NULL,
    no_active_plan boolean    NOT NULL DEFAULT false,
    request_id    uuid,
    decided_by    text,
    received_at   timestamptz NOT NULL,
    payload       jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, record_id, start_time)
) PARTITION BY RANGE (start_time);

-- The query API's access paths (indexes on a partitioned table are created on every partition).
CREATE INDEX usage_by_client ON usage_records (tenant_id, company_id, service_id, occurred_at);
CREATE INDEX usage_unmapped ON usage_records (tenant_id, occurred_at) WHERE status = 'unmapped';
CREATE INDEX usage_held ON usage_records (tenant_id, request_id) WHERE status = 'held';
CREATE INDEX usage_no_plan ON usage_records (tenant_id, occurred_at) WHERE no_active_plan;
CREATE INDEX time_by_client ON time_entries (tenant_id, company_id, service_id, start_time);
CREATE INDEX time_unmapped ON time_entries (tenant_id, start_time) WHERE status = 'unmapped';
CREATE INDEX time_held ON time_entries (tenant_id, request_id) WHERE status = 'held';
CREATE INDEX time_no_plan ON time_entries (tenant_id, start_time) WHERE no_active_plan;

-- Creates the month partitions covering `months` of `parent` when missing (as the schema's owner, so
-- the runtime role needs no DDL rights), each tenant-isolated like every other table. Called by the
-- writer in its own transaction before it inserts, so a month a test clock jumps to just works.
CREATE FUNCTION ensure_month_partitions(parent text, months timestamptz[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
    DECLARE
        m timestamptz;
        lo timestamptz;
        part text;
        created integer := 0;
    BEGIN
        IF parent NOT IN ('usage_records', 'time_entries') THEN
            RAISE EXCEPTION 'not a monthly table: %', parent;
        END IF;
        IF months IS NULL THEN
            RETURN 0;
        END IF;
        FOREACH m IN ARRAY months LOOP
            lo := date_trunc('month', m, 'UTC');
            part := parent || '_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
            IF to_regclass(part) IS NULL THEN
                PERFORM pg_advisory_xact_lock(hashtext(part));
                IF to_regclass(part) IS NULL THEN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   part, parent, lo, lo + interval '1 month');
                    CALL enable_tenant_isolation(part);
                    created := created + 1;
                END IF;
            END IF;
        END LOOP;
        RETURN created;
    END $$;

-- Records before this migration move over, with their keys.
DO $$ BEGIN
    PERFORM ensure_month_partitions(
        'usage_records', (SELECT array_agg(DISTINCT date_trunc('month', occurred_at, 'UTC')) FROM usage_records_v1));
END $$;
INSERT INTO record_keys (tenant_id, record_type, source, external_id, record_id, fingerprint, occurred_at, received_at)
SELECT tenant_id, 'usage', source, event_id, record_id, fingerprint, occurred_at, now() FROM usage_records_v1;
INSERT INTO usage_records (tenant_id, record_id, occurred_at, source, event_id, fingerprint, status, reason,
                                    company_ref, service_ref, kind, quantity, unit, received_at, payload)
SELECT tenant_id, record_id, occurred_at, source, event_id, fingerprint,
       CASE WHEN status = 'rejected' THEN 'unmapped' ELSE status END, reason, company_ref, service_ref,
       coalesce(payload ->> 'kind', 'delta'), quantity, payload ->> 'unit', now(), payload
  FROM usage_records_v1;
DROP TABLE usage_records_v1;

-- Records metering could not take (malformed, a conflict, a wrong unit …), from Kafka or HTTP, with the
-- reason, so the API can list and re-drive them (Kafka's also go to <topic>.dlq). A payload without a
-- readable tenant is kept under the nil tenant (operators only).
CREATE TABLE dead_letters (
    tenant_id      uuid        NOT NULL,
    dead_letter_id uuid        NOT NULL,
    record_type    text        NOT NULL CHECK (record_type IN ('usage', 'time')),
    channel        text        NOT NULL,
    source         text,
    external_id    text,
    error_class    text        NOT NULL,
    code           text        NOT NULL,
    field          text,
    reason         text        NOT NULL,
    payload        text        NOT NULL,
    received_at    timestamptz NOT NULL,
    redriven_at    timestamptz,
    redrive_result text,
    PRIMARY KEY (tenant_id, dead_letter_id)
);
CREATE INDEX dead_letters_open ON dead_letters (tenant_id, received_at) WHERE redriven_at IS NULL;
CREATE INDEX dead_letters_key ON dead_letters (tenant_id, record_type, source, external_id);

-- Approval rules of each tenant as last published on approvals.rules.v1 (a newer version replaces).
CREATE TABLE approval_rules (
    tenant_id uuid PRIMARY KEY,
    version   integer NOT NULL,
    rule_set  jsonb NOT NULL
);

-- Assignments (client ↔ plan, dates) from catalog.events.v1: a record of a client without a plan in
-- force on its date is still accepted, and flagged so the API lists it.
CREATE TABLE assignments (
    tenant_id     uuid    NOT NULL,
    assignment_id uuid    NOT NULL,
    company_id    uuid    NOT NULL,
    start_date    date    NOT NULL,
    end_date      date,
    deleted       boolean NOT NULL DEFAULT false,
    version       integer NOT NULL,
    PRIMARY KEY (tenant_id, assignment_id)
);
CREATE INDEX assignments_company ON assignments (tenant_id, company_id);

-- Technicians (catalog users with a user_ref), so a time entry names the catalog user when known.
CREATE TABLE users (
    tenant_id uuid    NOT NULL,
    user_id   uuid    NOT NULL,
    user_ref  text,
    version   integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX users_ref ON users (tenant_id, user_ref);

CALL enable_tenant_isolation('record_keys', 'usage_records', 'time_entries', 'dead_letters', 'approval_rules',
                             'assignments', 'users');
