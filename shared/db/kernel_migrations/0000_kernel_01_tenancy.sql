-- The tenant of the current transaction, set with SET LOCAL app.tenant_id (see shared/db/uow.py).
-- NULLIF makes "no tenant set" compare as NULL, so every tenant policy then matches zero rows.
CREATE FUNCTION app_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

-- Every service migration makes its tables tenant-scoped the same way: RLS enabled and forced, and one
-- policy comparing tenant_id with the transaction's tenant (the migrate step verifies it was done).
CREATE PROCEDURE enable_tenant_isolation(VARIADIC tables text[])
    LANGUAGE plpgsql
    AS $$
    DECLARE t text;
    BEGIN
        FOREACH t IN ARRAY tables LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = app_tenant()) '
                           'WITH CHECK (tenant_id = app_tenant())', t);
        END LOOP;
    END $$;
