-- depends: 0000_kernel_01_tenancy

-- Read model of the catalog (from catalog.events.v1): what refs and codes map to.
CREATE TABLE known_tenants (
    tenant_id uuid PRIMARY KEY,
    version   integer NOT NULL
);
CREATE TABLE companies (
    tenant_id   uuid NOT NULL,
    company_id  uuid NOT NULL,
    company_ref text NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (tenant_id, company_id)
);
CREATE INDEX companies_ref ON companies (tenant_id, company_ref);
CREATE TABLE company_refs (
    tenant_id  uuid NOT NULL,
    source     text NOT NULL,
    ref        text NOT NULL,
    company_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, source, ref)
);
CREATE TABLE services (
    tenant_id    uuid NOT NULL,
    service_id   uuid NOT NULL,
    code         text NOT NULL,
    unit         text NOT NULL,
    service_type text NOT NULL,
    version      integer NOT NULL,
    PRIMARY KEY (tenant_id, service_id)
);
CREATE UNIQUE INDEX services_code ON services (tenant_id, code);

-- Every usage record as received. The primary key is the idempotency key of billing.usage.v1
-- (event_id unique per tenant and source), so it holds across partitions and consumers.
CREATE TABLE usage_records (
    tenant_id   uuid        NOT NULL,
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    record_id   uuid        NOT NULL,
    fingerprint text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('accepted', 'unmapped', 'rejected')),
    reason      text,
    company_ref text        NOT NULL,
    service_ref text        NOT NULL,
    quantity    numeric     NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, source, event_id)
);
CREATE INDEX usage_records_unmapped ON usage_records (tenant_id) WHERE status = 'unmapped';

CALL enable_tenant_isolation('known_tenants', 'companies', 'company_refs', 'services', 'usage_records');
