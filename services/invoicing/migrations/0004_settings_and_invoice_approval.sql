-- depends: 0003_reports

-- Whether catalog prices include tax: the tenant's default (company_id = the nil uuid) and per client
-- overrides. Read when a draft asks for its taxes (pinned on the draft's work: the answer matches the question).
CREATE TABLE invoice_settings (
    tenant_id     uuid        NOT NULL,
    company_id    uuid        NOT NULL,  -- 00000000-0000-0000-0000-000000000000: the tenant's default
    tax_inclusive boolean     NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, company_id)
);

-- A draft waiting for approval of the whole invoice (an active `invoice` rule crossed at finalization):
-- status stays 'draft', held_reason says why, this is the request approvals answers.
ALTER TABLE invoices ADD COLUMN approval_request_id uuid;

CALL enable_tenant_isolation('invoice_settings');
