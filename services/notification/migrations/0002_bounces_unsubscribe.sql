-- depends: 0001_notification

-- A notification can also end as `suppressed` (its email address hard-bounced before: not sent) or `bounced`
-- (the MTA / ESP reported a bounce after it was sent).
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'retrying', 'sent', 'failed', 'suppressed', 'bounced'));

-- Bounces reported by an MTA / ESP webhook (POST /v1/bounces): every report kept, once per bounce id.
CREATE TABLE bounces (
    tenant_id       uuid        NOT NULL,
    bounce_id       uuid        NOT NULL,
    address         text        NOT NULL,  -- lower case
    kind            text        NOT NULL CHECK (kind IN ('hard', 'soft')),
    reason          text        NOT NULL,
    notification_id uuid,
    reported_at     timestamptz NOT NULL,
    reported_by     text        NOT NULL,
    PRIMARY KEY (tenant_id, bounce_id)
);
COMMENT ON TABLE bounces IS '@append-only';

-- Addresses no email goes to any more (a hard bounce): later emails to them are recorded `suppressed`.
CREATE TABLE suppressed_addresses (
    tenant_id  uuid        NOT NULL,
    address    text        NOT NULL,  -- lower case
    bounce_id  uuid        NOT NULL,
    reason     text        NOT NULL,
    since      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
COMMENT ON TABLE suppressed_addresses IS '@append-only';

-- The key that signs each tenant's unsubscribe links (HMAC-SHA256), made on first use.
CREATE TABLE link_keys (
    tenant_id uuid PRIMARY KEY,
    secret    text NOT NULL
);
COMMENT ON TABLE link_keys IS '@append-only';

CALL enable_tenant_isolation('bounces', 'suppressed_addresses', 'link_keys');
