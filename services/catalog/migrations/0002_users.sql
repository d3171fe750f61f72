-- depends: 0001_catalog

-- Users (MSP staff and client contacts) and their API keys. Secrets are stored as scrypt hashes only.
CREATE TABLE users (
    tenant_id uuid    NOT NULL,
    user_id   uuid    NOT NULL,
    email     text    NOT NULL,
    state     jsonb   NOT NULL,
    version   integer NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));

CREATE TABLE api_keys (
    tenant_id   uuid        NOT NULL,
    key_id      uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    secret_hash text        NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);

CALL enable_tenant_isolation('users', 'api_keys');
