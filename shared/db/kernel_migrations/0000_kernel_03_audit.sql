-- depends: 0000_kernel_01_tenancy

-- Append-only audit trail, hash-chained per tenant. The service role may only INSERT and SELECT it;
-- the chain head (last seq and hash per tenant) is kept by a trigger in a table the service role cannot
-- touch at all, so deleting the newest rows is detected as well as editing or deleting any row.
CREATE TABLE audit_log (
    tenant_id   uuid        NOT NULL,
    seq         bigint      NOT NULL,
    audit_id    uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    before      jsonb,
    after       jsonb,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity_type, entity_id);
CALL enable_tenant_isolation('audit_log');

CREATE TABLE audit_head (
    tenant_id uuid   NOT NULL PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      text   NOT NULL
);
CALL enable_tenant_isolation('audit_head');

CREATE FUNCTION audit_row_hash(r audit_log) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
        SELECT encode(sha256(convert_to(concat_ws(E'\x1f',
            r.tenant_id::text, r.seq::text, r.audit_id::text,
            to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
            r.actor, r.action, r.entity_type, r.entity_id,
            coalesce(r.before::text, 'null'), coalesce(r.after::text, 'null'), r.prev_hash), 'UTF8')), 'hex')
    $$;

CREATE FUNCTION audit_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
    DECLARE
        head audit_head;
    BEGIN
        INSERT INTO audit_head (tenant_id, seq, hash) VALUES (NEW.tenant_id, 0, 'genesis')
            ON CONFLICT (tenant_id) DO NOTHING;
        SELECT * INTO head FROM audit_head WHERE tenant_id = NEW.tenant_id FOR UPDATE;
        NEW.seq := head.seq + 1;
        NEW.prev_hash := head.hash;
        NEW.hash := audit_row_hash(NEW);
        UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE tenant_id = NEW.tenant_id;
        RETURN NEW;
    END $$;

CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

-- Walks a tenant's chain and names the first broken link (NULL broken_seq when the chain holds).
CREATE FUNCTION audit_verify(tenant uuid)
    RETURNS TABLE (ok boolean, checked bigint, broken_seq bigint, problem text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
    DECLARE
        r audit_log;
        expected_seq bigint := 1;
        expected_prev text := 'genesis';
        head audit_head;
    BEGIN
        IF tenant IS DISTINCT FROM app_tenant() THEN
            RAISE EXCEPTION 'audit_verify(%) called outside that tenant''s transaction', tenant;
        END IF;
        FOR r IN SELECT * FROM audit_log WHERE tenant_id = tenant ORDER BY seq LOOP
            IF r.seq <> expected_seq THEN
                RETURN QUERY SELECT false, expected_seq - 1, expected_seq,
                    format('row %s is missing (next row present is %s)', expected_seq, r.seq);
                RETURN;
            END IF;
            IF r.prev_hash <> expected_prev THEN
                RETURN QUERY SELECT false, expected_seq - 1, r.seq,
                    format('row %s does not link to the row before it', r.seq);
                RETURN;
            END IF;
            IF r.hash <> audit_row_hash(r) THEN
                RETURN QUERY SELECT false, expected_seq - 1, r.seq,
                    format('row %s was modified after it was written', r.seq);
                RETURN;
            END IF;
            expected_prev := r.hash;
            expected_seq := expected_seq + 1;
        END LOOP;
        SELECT * INTO head FROM audit_head WHERE tenant_id = tenant;
        IF head.tenant_id IS NOT NULL THEN
            IF head.seq > expected_seq - 1 THEN
                RETURN QUERY SELECT false, expected_seq - 1, expected_seq,
                    format('chain ends at row %s but its anchored head is row %s: the newest rows were removed',
                           expected_seq - 1, head.seq);
                RETURN;
            ELSIF head.seq < expected_seq - 1 THEN
                RETURN QUERY SELECT false, expected_seq - 1, head.seq + 1,
                    format('rows after %s were written around the chain (the anchored head is row %s)',
                           head.seq, head.seq);
                RETURN;
            ELSIF head.hash <> expected_prev THEN
                RETURN QUERY SELECT false, expected_seq - 1, head.seq,
                    format('row %s was rewritten after it was written (it no longer matches the anchored head)',
                           head.seq);
                RETURN;
            END IF;
        END IF;
        RETURN QUERY SELECT true, expected_seq - 1, NULL::bigint, NULL::text;
    END $$;

COMMENT ON TABLE audit_log IS '@append-only: the service role may INSERT and SELECT only';
COMMENT ON TABLE audit_head IS '@no-app-access: kept by the audit_chain trigger only';
