-- depends: 0002_users

-- One table for every catalog entity kind (clients, services, plans, assignments, users, and the kinds
-- the catalog grows): each row is the entity's full state as published in its catalog event, with a
-- version and a soft-delete flag. Uniqueness that the model promises is enforced here, per kind.
CREATE TABLE entities (
    tenant_id   uuid    NOT NULL,
    entity_type text    NOT NULL,
    entity_id   uuid    NOT NULL,
    state       jsonb   NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    deleted     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, entity_type, entity_id)
);
CREATE UNIQUE INDEX entities_company_ref ON entities (tenant_id, (state ->> 'company_ref'))
    WHERE entity_type = 'company' AND NOT deleted;
CREATE UNIQUE INDEX entities_service_code ON entities (tenant_id, (state ->> 'code'))
    WHERE entity_type = 'service' AND NOT deleted;
CREATE UNIQUE INDEX entities_user_email ON entities (tenant_id, lower(state ->> 'email'))
    WHERE entity_type = 'user' AND NOT deleted;
CREATE INDEX entities_assignment_company ON entities (tenant_id, (state ->> 'company_id'))
    WHERE entity_type = 'assignment';

-- The external references upstream tools use for a client: unique per tenant and source.
CREATE TABLE company_refs (
    tenant_id  uuid NOT NULL,
    source     text NOT NULL,
    ref        text NOT NULL,
    company_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, source, ref)
);

-- Move what the first tables held. Row-level security is lifted for the owner only while it copies.
ALTER TABLE companies NO FORCE ROW LEVEL SECURITY;
ALTER TABLE services NO FORCE ROW LEVEL SECURITY;
ALTER TABLE plans NO FORCE ROW LEVEL SECURITY;
ALTER TABLE assignments NO FORCE ROW LEVEL SECURITY;
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
INSERT INTO entities (tenant_id, entity_type, entity_id, state, version)
    SELECT tenant_id, 'company', company_id, state, version FROM companies
    UNION ALL SELECT tenant_id, 'service', service_id, state, version FROM services
    UNION ALL SELECT tenant_id, 'plan', plan_id, state, version FROM plans
    UNION ALL SELECT tenant_id, 'assignment', assignment_id, state, version FROM assignments
    UNION ALL SELECT tenant_id, 'user', user_id, state, version FROM users;
INSERT INTO company_refs (tenant_id, source, ref, company_id)
    SELECT c.tenant_id, r ->> 'source', r ->> 'ref', c.company_id
    FROM companies c, jsonb_array_elements(c.state -> 'refs') r
    ON CONFLICT DO NOTHING;
DROP TABLE companies, services, plans, assignments, users;

CALL enable_tenant_isolation('entities', 'company_refs');
