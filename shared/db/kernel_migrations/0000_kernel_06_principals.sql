-- depends: 0000_kernel_01_tenancy

-- Who each signed-in user is now, as catalog last published it (issue 17: a token used to outlive its user's
-- demotion or deletion by up to its lifetime). Every service keeps this from its catalog subscription
-- (shared/principals.py) and checks each bearer token against it: a token whose role, client or activity no
-- longer matches the user is refused with 401. Catalog answers from its own entities (its 0005 migration).
CREATE TABLE principals (
    tenant_id  uuid    NOT NULL,
    user_id    uuid    NOT NULL,
    role       text    NOT NULL,
    company_id uuid,
    active     boolean NOT NULL,
    version    integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CALL enable_tenant_isolation('principals');

-- Checking a token happens before any tenant is set: one SECURITY DEFINER look-up by the token's own
-- (verified) tenant and user, under a policy granted to the schema owner only.
DO $$ BEGIN
    EXECUTE format('CREATE POLICY standing_owner ON principals TO %I USING (true)', current_schema() || '_owner');
END $$;

CREATE FUNCTION principal_standing(of_tenant uuid, of_user uuid)
    RETURNS TABLE (role text, company_id uuid, active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT p.role, p.company_id, p.active FROM principals p WHERE p.tenant_id = of_tenant AND p.user_id = of_user $$;
