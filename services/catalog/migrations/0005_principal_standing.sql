-- depends: 0004_approval_rules 0000_kernel_06_principals

-- Catalog owns the users, so it answers whether a token still stands from its own entities rather than from
-- the kernel's projection (which it never fills: it publishes the catalog events, it does not consume them).
DROP FUNCTION principal_standing(uuid, uuid);
DROP TABLE principals;

DO $$ BEGIN
    EXECUTE format('CREATE POLICY standing_owner ON entities TO %I USING (entity_type = ''user'')',
                   current_schema() || '_owner');
END $$;

CREATE FUNCTION principal_standing(of_tenant uuid, of_user uuid)
    RETURNS TABLE (role text, company_id uuid, active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        SELECT e.state ->> 'role', (e.state ->> 'company_id')::uuid,
               NOT e.deleted AND coalesce((e.state ->> 'active')::boolean, true)
        FROM entities e
        WHERE e.tenant_id = of_tenant AND e.entity_type = 'user' AND e.entity_id = of_user
    $$;
