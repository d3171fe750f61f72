-- depends: 0000_kernel_01_tenancy

-- Read model of the catalog: what an invoice snapshots about its tenant and client.
CREATE TABLE tenants (
    tenant_id uuid PRIMARY KEY,
    livemode  boolean NOT NULL,
    timezone  text    NOT NULL,
    version   integer NOT NULL
);
CREATE TABLE companies (
    tenant_id  uuid    NOT NULL,
    company_id uuid    NOT NULL,
    state      jsonb   NOT NULL,
    version    integer NOT NULL,
    PRIMARY KEY (tenant_id, company_id)
);

-- Charges from rating, kept as received (full precision).
CREATE TABLE charges (
    tenant_id    uuid    NOT NULL,
    charge_id    uuid    NOT NULL,
    company_id   uuid    NOT NULL,
    period_start date    NOT NULL,
    period_end   date    NOT NULL,
    document     jsonb   NOT NULL,
    PRIMARY KEY (tenant_id, charge_id)
);
CREATE INDEX charges_by_period ON charges (tenant_id, company_id, period_start, period_end);

-- One invoice per client and period: the unique key makes repeated or concurrent runs produce one.
CREATE TABLE invoices (
    tenant_id      uuid  NOT NULL,
    invoice_id     uuid  NOT NULL,
    company_id     uuid  NOT NULL,
    period_start   date  NOT NULL,
    period_end     date  NOT NULL,
    status         text  NOT NULL CHECK (status IN ('held', 'finalized')),
    invoice_number text,
    held_reason    text,
    document       jsonb,
    PRIMARY KEY (tenant_id, invoice_id),
    UNIQUE (tenant_id, company_id, period_start, period_end),
    UNIQUE (tenant_id, invoice_number)
);

-- Gap-free numbering per tenant and month: the counter row is locked by the finalizing transaction.
CREATE TABLE invoice_numbers (
    tenant_id uuid    NOT NULL,
    yymm      char(4) NOT NULL,
    last      integer NOT NULL,
    PRIMARY KEY (tenant_id, yymm)
);

CALL enable_tenant_isolation('tenants', 'companies', 'charges', 'invoices', 'invoice_numbers');
