-- depends: 0000_kernel_01_tenancy

-- The catalog's first tables: enough for tenants, clients, services, plans, assignments and the clock.
-- (Users, credentials, discounts, bundles, dependencies and client status arrive with the catalog issue.)

CREATE TABLE tenants (
    tenant_id     uuid PRIMARY KEY,
    name          text NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('live', 'sandbox')),
    timezone      text NOT NULL,
    base_currency char(3) NOT NULL,
    version       integer NOT NULL DEFAULT 1
);

CREATE TABLE companies (
    tenant_id          uuid NOT NULL,
    company_id         uuid NOT NULL,
    company_ref        text NOT NULL,
    state              jsonb NOT NULL,
    version            integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, company_id),
    UNIQUE (tenant_id, company_ref)
);

CREATE TABLE services (
    tenant_id  uuid NOT NULL,
    service_id uuid NOT NULL,
    code       text NOT NULL,
    state      jsonb NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, service_id),
    UNIQUE (tenant_id, code)
);

CREATE TABLE plans (
    tenant_id uuid NOT NULL,
    plan_id   uuid NOT NULL,
    state     jsonb NOT NULL,
    version   integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, plan_id)
);

CREATE TABLE assignments (
    tenant_id     uuid NOT NULL,
    assignment_id uuid NOT NULL,
    company_id    uuid NOT NULL,
    plan_id       uuid NOT NULL,
    state         jsonb NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, assignment_id)
);

-- The billing clock of each tenant: where its billing time stands.
CREATE TABLE tenant_clocks (
    tenant_id uuid PRIMARY KEY,
    now       timestamptz NOT NULL,
    mode      text NOT NULL CHECK (mode IN ('wall', 'test'))
);

CALL enable_tenant_isolation('tenants', 'companies', 'services', 'plans', 'assignments', 'tenant_clocks');

-- The wall-clock scheduler ticks every live tenant: the one cross-tenant read, through the owner.
DO $$ BEGIN
    EXECUTE format('CREATE POLICY scheduler_owner ON tenants TO %I USING (true)', current_schema() || '_owner');
END $$;
CREATE FUNCTION live_tenants() RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT t.tenant_id FROM tenants t WHERE t.mode = 'live' ORDER BY t.tenant_id $$;
