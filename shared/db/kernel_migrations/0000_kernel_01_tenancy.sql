-- The tenant of the current transaction, set with SET LOCAL app.tenant_id (see shared/db/uow.py).
-- NULLIF makes "no tenant set" compare as NULL, so every tenant policy then matches zero rows.
CREATE FUNCTION app_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
