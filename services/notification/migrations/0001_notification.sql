-- depends: 0000_kernel_03_audit

-- Read model of the catalog (tenants, clients, users, plans, assignments) and each tenant's billing time.
CREATE TABLE tenants (
    tenant_id uuid    PRIMARY KEY,
    name      text    NOT NULL,
    timezone  text    NOT NULL,
    mode      text    NOT NULL,
    version   integer NOT NULL
);
CREATE TABLE clocks (
    tenant_id uuid        PRIMARY KEY,
    now       timestamptz NOT NULL
);
CREATE TABLE companies (
    tenant_id     uuid    NOT NULL,
    company_id    uuid    NOT NULL,
    company_ref   text    NOT NULL,
    name          text    NOT NULL,
    billing_email text,
    active        boolean NOT NULL,
    version       integer NOT NULL,
    PRIMARY KEY (tenant_id, company_id)
);
CREATE INDEX companies_by_ref ON companies (tenant_id, company_ref);
CREATE TABLE users (
    tenant_id  uuid    NOT NULL,
    user_id    uuid    NOT NULL,
    email      text    NOT NULL,
    name       text    NOT NULL,
    role       text    NOT NULL,
    kind       text    NOT NULL,
    company_id uuid,
    user_ref   text,
    active     boolean NOT NULL,
    version    integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX users_by_company ON users (tenant_id, company_id) WHERE company_id IS NOT NULL;
CREATE TABLE plans (
    tenant_id uuid    NOT NULL,
    plan_id   uuid    NOT NULL,
    name      text    NOT NULL,
    version   integer NOT NULL,
    PRIMARY KEY (tenant_id, plan_id)
);
CREATE TABLE assignments (
    tenant_id     uuid    NOT NULL,
    assignment_id uuid    NOT NULL,
    company_id    uuid    NOT NULL,
    plan_id       uuid    NOT NULL,
    end_date      date,
    renewal_date  date,
    auto_renew    boolean NOT NULL,
    active        boolean NOT NULL,
    version       integer NOT NULL,
    PRIMARY KEY (tenant_id, assignment_id)
);
CREATE INDEX assignments_renewing ON assignments (tenant_id, renewal_date) WHERE renewal_date IS NOT NULL AND active;

-- Per-tenant settings: SMTP sender, SMS gateway, reminder schedule and renewal notice (one row per tenant).
CREATE TABLE settings (
    tenant_id           uuid      PRIMARY KEY,
    smtp_host           text,
    smtp_port           integer,
    smtp_from           text,
    smtp_from_name      text,
    smtp_starttls       boolean   NOT NULL DEFAULT false,
    smtp_username       text,
    smtp_password       text,
    sms_url             text,
    sms_token           text,
    sms_sender          text,
    reminder_offsets    integer[] NOT NULL DEFAULT '{-7,0,7,14}',
    renewal_notice_days integer   NOT NULL DEFAULT 30
);
CREATE TABLE webhook_endpoints (
    tenant_id   uuid    NOT NULL,
    endpoint_id uuid    NOT NULL,
    url         text    NOT NULL,
    secret      text    NOT NULL,
    company_id  uuid,
    types       text[]  NOT NULL DEFAULT '{}',
    active      boolean NOT NULL,
    PRIMARY KEY (tenant_id, endpoint_id)
);
CREATE TABLE templates (
    tenant_id         uuid NOT NULL,
    notification_type text NOT NULL,
    channel           text NOT NULL,
    subject           text NOT NULL,
    body              text NOT NULL,
    PRIMARY KEY (tenant_id, notification_type, channel)
);

-- Preferences: a recipient (a user, or a client's billing address by its company id) opts a type in or out
-- of a channel; no row means the default. Contact details the catalog does not hold (a phone for SMS).
CREATE TABLE preferences (
    tenant_id         uuid        NOT NULL,
    recipient_id      uuid        NOT NULL,
    notification_type text        NOT NULL,
    channel           text        NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    enabled           boolean     NOT NULL,
    updated_at        timestamptz NOT NULL,
    updated_by        text        NOT NULL,
    PRIMARY KEY (tenant_id, recipient_id, notification_type, channel)
);
CREATE TABLE recipient_details (
    tenant_id    uuid NOT NULL,
    recipient_id uuid NOT NULL,
    phone        text,
    PRIMARY KEY (tenant_id, recipient_id)
);

-- Invoices awaiting payment (for reminders) and the reminder stages already done per invoice.
CREATE TABLE invoices (
    tenant_id      uuid    NOT NULL,
    invoice_id     uuid    NOT NULL,
    company_ref    text    NOT NULL,
    company_id     uuid,
    due_date       date    NOT NULL,
    status         text    NOT NULL,
    context        jsonb   NOT NULL,
    billing_email  text    NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id)
);
CREATE INDEX invoices_open ON invoices (tenant_id, due_date) WHERE status NOT IN ('paid', 'void', 'cancelled');
CREATE TABLE reminder_stages (
    tenant_id   uuid        NOT NULL,
    invoice_id  uuid        NOT NULL,
    offset_days integer     NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, offset_days)
);
COMMENT ON TABLE reminder_stages IS '@append-only: a stage is done once';
CREATE TABLE renewal_notices (
    tenant_id     uuid        NOT NULL,
    assignment_id uuid        NOT NULL,
    renewal_date  date        NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, assignment_id, renewal_date)
);
COMMENT ON TABLE renewal_notices IS '@append-only: one notice per term end';

-- Attachments (an invoice's PDF), stored once and referenced by its notifications.
CREATE TABLE documents (
    tenant_id   uuid  NOT NULL,
    document_id uuid  NOT NULL,
    filename    text  NOT NULL,
    content     bytea NOT NULL,
    PRIMARY KEY (tenant_id, document_id)
);
COMMENT ON TABLE documents IS '@append-only';

-- Every notification: who, what, channel, where, what it said, and how delivery stands. Its id is the
-- idempotency key (event + recipient + channel), so a redelivered event records and sends nothing new.
-- It doubles as the delivery queue: ready rows with status pending / retrying are what the worker sends.
CREATE TABLE notifications (
    tenant_id         uuid        NOT NULL,
    notification_id   uuid        NOT NULL,
    event_id          text        NOT NULL,
    notification_type text        NOT NULL,
    channel           text        NOT NULL,
    recipient_id      uuid        NOT NULL,
    recipient_kind    text        NOT NULL,
    company_id        uuid,
    address           text        NOT NULL,
    endpoint_id       uuid,
    subject           text        NOT NULL,
    body              text        NOT NULL,
    payload           jsonb       NOT NULL,
    document_id       uuid,
    status            text        NOT NULL CHECK (status IN ('pending', 'retrying', 'sent', 'failed')),
    ready             boolean     NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    last_error        text,
    triggered_at      timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, notification_id)
);
CREATE INDEX notifications_due ON notifications (created_at) WHERE ready AND status IN ('pending', 'retrying');
CREATE INDEX notifications_waiting ON notifications (tenant_id, next_attempt_at) WHERE status = 'retrying';
CREATE INDEX notifications_by_recipient ON notifications (tenant_id, recipient_id, created_at);
CREATE TABLE delivery_attempts (
    tenant_id       uuid        NOT NULL,
    notification_id uuid        NOT NULL,
    attempt         integer     NOT NULL,
    at              timestamptz NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('sent', 'failed')),
    error           text,
    PRIMARY KEY (tenant_id, notification_id, attempt)
);
COMMENT ON TABLE delivery_attempts IS '@append-only: the delivery log';

CALL enable_tenant_isolation(
    'tenants', 'clocks', 'companies', 'users', 'plans', 'assignments', 'settings', 'webhook_endpoints',
    'templates', 'preferences', 'recipient_details', 'invoices', 'reminder_stages', 'renewal_notices',
    'documents', 'notifications', 'delivery_attempts'
);

-- The delivery worker is the one reader across tenants: it asks this SECURITY DEFINER function which
-- notifications are ready, then works on each inside its tenant's transaction (RLS on).
DO $$ BEGIN
    EXECUTE format('CREATE POLICY worker_owner ON notifications TO %I USING (true)', current_schema() || '_owner');
END $$;
CREATE FUNCTION deliveries_due(max_rows integer)
    RETURNS TABLE (tenant_id uuid, notification_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
        SELECT n.tenant_id, n.notification_id FROM notifications n
        WHERE n.ready AND n.status IN ('pending', 'retrying') ORDER BY n.created_at LIMIT max_rows
    $$;
