-- depends: 0001_invoicing

-- More of the catalog read model: discounts (which apply), services (tax categories). State as received.
CREATE TABLE catalog_entities (
    tenant_id   uuid    NOT NULL,
    entity_type text    NOT NULL,
    entity_id   uuid    NOT NULL,
    state       jsonb   NOT NULL,
    version     integer NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
);

-- Each tenant's approval rules (approvals.rules.v1, state-carrying: the whole set, newer version wins).
CREATE TABLE approval_rule_sets (
    tenant_id uuid    PRIMARY KEY,
    rule_set  jsonb   NOT NULL,
    version   integer NOT NULL
);

-- Each tenant's billing time (billing.clock.v1): overdue is decided on it.
CREATE TABLE clocks (
    tenant_id uuid        PRIMARY KEY,
    now       timestamptz NOT NULL
);

-- The invoice moves through quoting (awaiting_conversion → awaiting_tax) to finalized and its lifecycle.
ALTER TABLE invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check CHECK (status IN (
    'draft', 'awaiting_conversion', 'awaiting_tax', 'held', 'cancelled',
    'finalized', 'sent', 'viewed', 'partially_paid', 'paid', 'overdue', 'void', 'disputed',
    'credited'));  -- credited: the period came to a negative total and was issued as a credit note
ALTER TABLE invoices
    ADD COLUMN company_ref     text,
    ADD COLUMN attempt         integer     NOT NULL DEFAULT 0,
    ADD COLUMN work            jsonb,          -- lines, quotes asked and received (see use_cases)
    ADD COLUMN pinned          jsonb,          -- exchange-rate and tax-rate rows the invoice was quoted with
    ADD COLUMN closed_at       timestamptz,
    ADD COLUMN livemode        boolean,
    ADD COLUMN issue_date      date,
    ADD COLUMN due_date        date,
    ADD COLUMN currency        char(3),
    ADD COLUMN total           numeric,
    ADD COLUMN credits_applied numeric     NOT NULL DEFAULT 0,
    ADD COLUMN amount_paid     numeric     NOT NULL DEFAULT 0,
    ADD COLUMN amount_credited numeric     NOT NULL DEFAULT 0,
    ADD COLUMN disputed_reason text,
    ADD COLUMN sent_at         timestamptz,
    ADD COLUMN viewed_at       timestamptz,
    ADD COLUMN updated_at      timestamptz;
CREATE INDEX invoices_by_status ON invoices (tenant_id, status, due_date);

-- Which charges each line carries (drill-down: line → charges → source records).
CREATE TABLE invoice_line_charges (
    tenant_id  uuid NOT NULL,
    invoice_id uuid NOT NULL,
    line_id    uuid NOT NULL,
    charge_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, line_id, charge_id)
);

-- Payments: pending → confirmed | failed; confirmed → refunded (fully).
CREATE TABLE payments (
    tenant_id   uuid        NOT NULL,
    payment_id  uuid        NOT NULL,
    invoice_id  uuid        NOT NULL,
    company_id  uuid        NOT NULL,
    amount      numeric     NOT NULL CHECK (amount > 0),
    currency    char(3)     NOT NULL,
    method      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'refunded')),
    applied     numeric     NOT NULL DEFAULT 0,   -- the part that paid the invoice; the rest became credit
    refunded    numeric     NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, payment_id)
);

CREATE TABLE refunds (
    tenant_id   uuid        NOT NULL,
    refund_id   uuid        NOT NULL,
    payment_id  uuid        NOT NULL,
    invoice_id  uuid        NOT NULL,
    amount      numeric     NOT NULL CHECK (amount > 0),
    currency    char(3)     NOT NULL,
    reason      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('awaiting_approval', 'refunded', 'rejected')),
    approval_request_id uuid,
    refunded_at timestamptz,
    requested_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, refund_id)
);

-- The transactions ledger: one row per financial event of a client, never edited.
-- balance_effect: what the client owes changes by this (invoice +, payment −, credit −, refund +, void −).
-- credit_effect: the client's available credit changes by this (over-payment +, credit applied −, …).
CREATE TABLE transactions (
    tenant_id      uuid        NOT NULL,
    transaction_id uuid        NOT NULL,
    company_id     uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('invoice', 'payment', 'refund', 'credit', 'adjustment',
                                                        'credit_applied', 'void')),
    amount         numeric     NOT NULL,
    balance_effect numeric     NOT NULL,
    credit_effect  numeric     NOT NULL,
    currency       char(3)     NOT NULL,
    invoice_id     uuid,
    reference_id   uuid,
    description    text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    seq            bigserial,
    PRIMARY KEY (tenant_id, transaction_id)
);
CREATE INDEX transactions_by_company ON transactions (tenant_id, company_id, seq);
COMMENT ON TABLE transactions IS '@append-only: the ledger is history; corrections are new rows';

-- Credit notes: draft → approved → applied; draft → cancelled; approved → expired.
CREATE TABLE credit_notes (
    tenant_id           uuid        NOT NULL,
    credit_note_id      uuid        NOT NULL,
    invoice_id          uuid        NOT NULL,
    company_id          uuid        NOT NULL,
    credit_note_number  text,
    reason              text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('draft', 'awaiting_approval', 'approved', 'applied',
                                                               'cancelled', 'expired', 'rejected')),
    currency            char(3)     NOT NULL,
    total               numeric     NOT NULL,
    document            jsonb       NOT NULL,
    memo                text,
    approval_request_id uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, credit_note_id),
    UNIQUE (tenant_id, credit_note_number)
);

CREATE TABLE credit_note_numbers (
    tenant_id uuid    NOT NULL,
    yymm      char(4) NOT NULL,
    last      integer NOT NULL,
    PRIMARY KEY (tenant_id, yymm)
);

-- Billing adjustments: an operator's amount (either sign) for a client, landing as a line on its next
-- invoice; over an approval rule it waits for the decision. awaiting_approval → approved → invoiced | rejected.
CREATE TABLE adjustments (
    tenant_id           uuid        NOT NULL,
    adjustment_id       uuid        NOT NULL,
    company_id          uuid        NOT NULL,
    amount              numeric     NOT NULL CHECK (amount <> 0),
    currency            char(3)     NOT NULL,
    description         text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('awaiting_approval', 'approved', 'invoiced', 'rejected')),
    approval_request_id uuid,
    invoice_id          uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, adjustment_id)
);
CREATE INDEX adjustments_open ON adjustments (tenant_id, company_id) WHERE status = 'approved';

CALL enable_tenant_isolation('adjustments', 'catalog_entities', 'approval_rule_sets', 'clocks', 'invoice_line_charges', 'payments',
                             'refunds', 'transactions', 'credit_notes', 'credit_note_numbers');
