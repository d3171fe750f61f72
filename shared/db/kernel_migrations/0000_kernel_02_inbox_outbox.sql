-- depends: 0000_kernel_01_tenancy

-- Inbox: ids of consumed messages, written in the same transaction as their effect, so a redelivered
-- message changes nothing.
CREATE TABLE inbox (
    tenant_id   uuid        NOT NULL,
    consumer    text        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, consumer, message_id)
);
CALL enable_tenant_isolation('inbox');

-- Outbox: everything the service publishes, written in the effect's transaction and relayed in seq
-- order, at least once. Payloads are the exact bytes to publish.
CREATE TABLE outbox (
    tenant_id    uuid        NOT NULL,
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    message_id   uuid        NOT NULL,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    payload      bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CALL enable_tenant_isolation('outbox');

-- The relay is the one reader across tenants. It never runs as the service role directly: it calls these
-- SECURITY DEFINER functions, which run as the schema owner under a policy granted to the owner only.
DO $$ BEGIN
    EXECUTE format('CREATE POLICY relay_owner ON outbox TO %I USING (true)', current_schema() || '_owner');
END $$;

CREATE FUNCTION outbox_pending(max_rows integer)
    RETURNS TABLE (tenant_id uuid, seq bigint, message_id uuid, topic text, key text, payload bytea,
                   headers jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        SELECT o.tenant_id, o.seq, o.message_id, o.topic, o.key, o.payload, o.headers
        FROM outbox o WHERE o.published_at IS NULL ORDER BY o.seq LIMIT max_rows
    $$;

CREATE FUNCTION outbox_mark_published(seqs bigint[])
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        WITH done AS (
            UPDATE outbox SET published_at = now()
            WHERE seq = ANY(seqs) AND published_at IS NULL RETURNING 1
        ) SELECT count(*)::integer FROM done
    $$;

-- After the local stack starts a new memory-only broker, everything retained is relayed again; the
-- consumers' inboxes make the repeats harmless.
CREATE FUNCTION outbox_requeue_since(since timestamptz)
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        WITH again AS (
            UPDATE outbox SET published_at = NULL
            WHERE published_at IS NOT NULL AND created_at >= since RETURNING 1
        ) SELECT count(*)::integer FROM again
    $$;

-- Which broker epoch this schema's outbox was last relayed to (one row, not tenant data).
CREATE TABLE relay_state (
    tenant_id    uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    broker_epoch text NOT NULL,
    PRIMARY KEY (tenant_id)
);
CALL enable_tenant_isolation('relay_state');
COMMENT ON TABLE relay_state IS '@no-app-access: changed by relay_switch_epoch() only';
DO $$ BEGIN
    EXECUTE format('CREATE POLICY relay_owner ON relay_state TO %I USING (true)', current_schema() || '_owner');
END $$;

CREATE FUNCTION relay_switch_epoch(epoch text, since timestamptz)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
    DECLARE
        previous text;
        requeued integer := 0;
    BEGIN
        SELECT broker_epoch INTO previous FROM relay_state FOR UPDATE;
        IF previous IS DISTINCT FROM epoch THEN
            IF previous IS NOT NULL THEN
                requeued := outbox_requeue_since(since);
            END IF;
            INSERT INTO relay_state (broker_epoch) VALUES (epoch)
                ON CONFLICT (tenant_id) DO UPDATE SET broker_epoch = EXCLUDED.broker_epoch;
        END IF;
        RETURN requeued;
    END $$;

-- Wake the relay at commit instead of making it poll.
CREATE FUNCTION outbox_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', ''); RETURN NULL; END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
