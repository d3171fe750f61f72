-- depends: 0000_kernel_01_tenancy

-- Tenants approvals has heard of (from catalog events), and each tenant's billing time (from clock ticks):
-- timeouts run in billing time, so a sandbox on a test clock times out when its clock says so.
CREATE TABLE tenants (
    tenant_id uuid    PRIMARY KEY,
    version   integer NOT NULL
);
CREATE TABLE clocks (
    tenant_id uuid        PRIMARY KEY,
    now       timestamptz NOT NULL
);

-- Read model of catalog users: who a request's requested_by is (so they cannot decide it).
CREATE TABLE users (
    tenant_id uuid    NOT NULL,
    user_id   uuid    NOT NULL,
    email     text    NOT NULL,
    user_ref  text,
    role      text    NOT NULL,
    active    boolean NOT NULL,
    version   integer NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX users_by_ref ON users (tenant_id, user_ref) WHERE user_ref IS NOT NULL;
CREATE INDEX users_by_email ON users (tenant_id, lower(email));

-- The rules: every version of every rule, never edited (the current one is the highest version), and the
-- version of each tenant's published set.
CREATE TABLE rules (
    tenant_id  uuid        NOT NULL,
    rule_id    uuid        NOT NULL,
    version    integer     NOT NULL,
    rule       jsonb       NOT NULL,
    actor      text        NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, version)
);
COMMENT ON TABLE rules IS '@append-only: a change is a new version';
CREATE TABLE rule_sets (
    tenant_id uuid    PRIMARY KEY,
    version   integer NOT NULL
);

-- Requests and where their workflow stands. steps is the rule's steps as they were when it was requested.
CREATE TABLE requests (
    tenant_id         uuid        NOT NULL,
    request_id        uuid        NOT NULL,
    item_type         text        NOT NULL,
    item_id           text        NOT NULL,
    fingerprint       text        NOT NULL,
    request           jsonb       NOT NULL,
    rule_id           uuid,
    rule_version      integer,
    steps             jsonb       NOT NULL,
    requester_user_id uuid,
    status            text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'superseded')),
    current_step      integer     NOT NULL,
    roles             text[]      NOT NULL,
    escalated         boolean     NOT NULL DEFAULT false,
    step_started_at   timestamptz,
    due_at            timestamptz,
    received_at       timestamptz NOT NULL,
    decided_by        text,
    decided_at        timestamptz,
    PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX requests_pending ON requests (tenant_id, due_at) WHERE status = 'pending';
CREATE INDEX requests_by_item ON requests (tenant_id, item_type, item_id);
CREATE INDEX requests_by_roles ON requests USING gin (roles) WHERE status = 'pending';

-- One decision per step, never edited: the primary key is what stops a step being decided twice.
CREATE TABLE step_decisions (
    tenant_id  uuid        NOT NULL,
    request_id uuid        NOT NULL,
    step       integer     NOT NULL,
    outcome    text        NOT NULL CHECK (outcome IN ('approved', 'rejected')),
    decided_by text        NOT NULL,
    role       text,
    comment    text,
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, request_id, step)
);
COMMENT ON TABLE step_decisions IS '@append-only: a decided step is never decided again';

CALL enable_tenant_isolation('tenants', 'clocks', 'users', 'rules', 'rule_sets', 'requests', 'step_decisions');
