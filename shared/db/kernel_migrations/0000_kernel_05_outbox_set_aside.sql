-- depends: 0000_kernel_04_outbox_backlog

-- A row the broker can never take (over its topic's size limit, a topic that does not exist …) used to stop the
-- relay for good: it failed every second and nothing behind it was ever published, for any tenant, across
-- restarts (issue 17). Such a row is now set aside with its reason (counted, logged, shown at /health/outbox) and
-- the relay moves on; an operator can publish it again once the cause is fixed (outbox_retry_set_aside()).
ALTER TABLE outbox ADD COLUMN set_aside_at timestamptz, ADD COLUMN set_aside_reason text;

CREATE OR REPLACE FUNCTION outbox_pending(max_rows integer)
    RETURNS TABLE (tenant_id uuid, seq bigint, message_id uuid, topic text, key text, payload bytea,
                   headers jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        SELECT o.tenant_id, o.seq, o.message_id, o.topic, o.key, o.payload, o.headers
        FROM outbox o WHERE o.published_at IS NULL AND o.set_aside_at IS NULL ORDER BY o.seq LIMIT max_rows
    $$;

CREATE OR REPLACE FUNCTION outbox_backlog()
    RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT count(*) FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL $$;

CREATE FUNCTION outbox_set_aside(row_seq bigint, reason text)
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        WITH aside AS (
            UPDATE outbox SET set_aside_at = now(), set_aside_reason = reason
            WHERE seq = row_seq AND published_at IS NULL AND set_aside_at IS NULL RETURNING 1
        ) SELECT count(*)::integer FROM aside
    $$;

CREATE FUNCTION outbox_set_aside_count()
    RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL AND published_at IS NULL $$;

CREATE FUNCTION outbox_retry_set_aside()
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        WITH again AS (
            UPDATE outbox SET set_aside_at = NULL, set_aside_reason = NULL
            WHERE set_aside_at IS NOT NULL AND published_at IS NULL RETURNING 1
        ) SELECT count(*)::integer FROM again
    $$;
