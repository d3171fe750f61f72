-- depends: 0000_kernel_01_tenancy

-- Read model of the catalog (from catalog.events.v1), with each entity's full state.
CREATE TABLE tenants (
    tenant_id uuid PRIMARY KEY,
    timezone  text NOT NULL,
    livemode  boolean NOT NULL,
    version   integer NOT NULL
);
CREATE TABLE catalog_entities (
    tenant_id   uuid    NOT NULL,
    entity_type text    NOT NULL,
    entity_id   uuid    NOT NULL,
    state       jsonb   NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
);
CREATE INDEX catalog_assignments_by_company ON catalog_entities (tenant_id, ((state ->> 'company_id')))
    WHERE entity_type = 'assignment';

-- Where each tenant's billing time stands (from billing.clock.v1).
CREATE TABLE tenant_clock (
    tenant_id uuid PRIMARY KEY,
    now       timestamptz NOT NULL
);

-- Billing cycles per client and frequency; rating alone decides which are closed, and so what is late.
CREATE TABLE billing_periods (
    tenant_id    uuid    NOT NULL,
    company_id   uuid    NOT NULL,
    frequency    text    NOT NULL,
    period_start date    NOT NULL,
    period_end   date    NOT NULL,
    status       text    NOT NULL CHECK (status IN ('open', 'closed')),
    charge_count integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, company_id, frequency, period_start)
);

-- Every charge, traceable to its records and the rule that priced it.
CREATE TABLE charges (
    tenant_id    uuid    NOT NULL,
    charge_id    uuid    NOT NULL,
    company_id   uuid    NOT NULL,
    period_start date    NOT NULL,
    period_end   date    NOT NULL,
    amount       numeric NOT NULL,
    currency     char(3) NOT NULL,
    document     jsonb   NOT NULL,
    PRIMARY KEY (tenant_id, charge_id)
);
CREATE INDEX charges_by_period ON charges (tenant_id, company_id, period_start);

-- Accepted records that could not be priced (no active plan covers them): visible, never dropped.
CREATE TABLE unrated_records (
    tenant_id uuid  NOT NULL,
    record_id uuid  NOT NULL,
    reason    text  NOT NULL,
    document  jsonb NOT NULL,
    PRIMARY KEY (tenant_id, record_id)
);

CALL enable_tenant_isolation('tenants', 'catalog_entities', 'tenant_clock', 'billing_periods', 'charges', 'unrated_records');
