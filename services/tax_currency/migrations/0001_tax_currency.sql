-- depends: 0000_kernel_01_tenancy

-- Read model of the catalog (catalog.events.v1): each tenant's base currency, and its clients (so an
-- exemption can only name a client that exists).
CREATE TABLE tenants (
    tenant_id     uuid    PRIMARY KEY,
    base_currency char(3) NOT NULL,
    version       integer NOT NULL
);
CREATE TABLE companies (
    tenant_id   uuid    NOT NULL,
    company_id  uuid    NOT NULL,
    company_ref text    NOT NULL,
    region      text    NOT NULL,
    deleted     boolean NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (tenant_id, company_id)
);

-- Tax rates: a change in law is a new row from its effective date; rows are never edited or removed, so
-- an invoice quoted against a row recomputes to the same numbers. See the README for how rows combine.
CREATE TABLE tax_rates (
    tenant_id    uuid        NOT NULL,
    tax_rate_id  uuid        NOT NULL,
    country      char(2)     NOT NULL,
    subdivision  text,
    tax_category text,
    name         text        NOT NULL CHECK (name <> ''),
    rate         numeric     NOT NULL CHECK (rate >= 0 AND rate <= 100),
    compound     boolean     NOT NULL,
    apply_order  integer     NOT NULL CHECK (apply_order >= 0),
    valid_from   date        NOT NULL,
    valid_to     date        CHECK (valid_to > valid_from),
    withdrawn    boolean     NOT NULL,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, tax_rate_id),
    CHECK (NOT withdrawn OR rate = 0)
);
COMMENT ON TABLE tax_rates IS '@append-only: a change in tax law is a new row, history is never edited';
CREATE INDEX tax_rates_by_country ON tax_rates (tenant_id, country);

-- Exemptions of a client, on every tax category (tax_category null) or one; the reason prints on the line.
CREATE TABLE exemptions (
    tenant_id    uuid        NOT NULL,
    exemption_id uuid        NOT NULL,
    company_id   uuid        NOT NULL,
    company_ref  text        NOT NULL,
    tax_category text,
    reason       text        NOT NULL CHECK (reason <> ''),
    valid_from   date        NOT NULL,
    valid_to     date        CHECK (valid_to > valid_from),
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, exemption_id)
);
CREATE INDEX exemptions_by_company ON exemptions (tenant_id, company_id);

-- Per-tenant active flags over the ISO 4217 list (shared/currencies.py). No row: inactive, except the
-- tenant's base currency, which is always active.
CREATE TABLE currencies (
    tenant_id  uuid        NOT NULL,
    code       char(3)     NOT NULL,
    active     boolean     NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

-- Exchange-rate history against the tenant's base currency: rate = units of currency per 1 base. A
-- correction for a date is a new row recorded later; quotes pin row ids, so old invoices keep theirs.
CREATE TABLE exchange_rates (
    tenant_id        uuid        NOT NULL,
    exchange_rate_id uuid        NOT NULL,
    currency         char(3)     NOT NULL,
    base_currency    char(3)     NOT NULL CHECK (base_currency <> currency),
    rate             numeric     NOT NULL CHECK (rate > 0),
    rate_date        date        NOT NULL,
    source           text        NOT NULL CHECK (source <> ''),
    recorded_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, exchange_rate_id)
);
COMMENT ON TABLE exchange_rates IS '@append-only: corrections are new rows; quoted invoices pin row ids';
CREATE INDEX exchange_rates_in_force ON exchange_rates (tenant_id, base_currency, currency, rate_date, recorded_at);

-- Every answer given on tax.results.v1, by request id: the exact bytes published, re-published as they are
-- when the same request id is asked again (never recomputed against newer rows).
CREATE TABLE quotes (
    tenant_id    uuid        NOT NULL,
    request_id   uuid        NOT NULL,
    invoice_id   uuid        NOT NULL,
    request_type text        NOT NULL,
    fingerprint  text        NOT NULL,
    answer_type  text        NOT NULL,
    payload      bytea       NOT NULL,
    answered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);
COMMENT ON TABLE quotes IS '@append-only: an answer, once given, is the answer for its request id';
CREATE INDEX quotes_by_invoice ON quotes (tenant_id, invoice_id);

CALL enable_tenant_isolation('tenants', 'companies', 'tax_rates', 'exemptions', 'currencies', 'exchange_rates',
                             'quotes');
