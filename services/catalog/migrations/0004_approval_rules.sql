-- depends: 0003_entities

-- The approval rules of each tenant, as last received on approvals.rules.v1 (the approvals service owns
-- them and publishes the whole set per tenant): a set replaces the one held when its version is newer.
-- Saving a discount checks them (services/catalog/domain/discount_approval.py).
CREATE TABLE approval_rules (
    tenant_id uuid PRIMARY KEY,
    version   integer NOT NULL,
    rule_set  jsonb NOT NULL
);
-- Pending discounts are looked up by id when a decision arrives; listing them filters on state.
CREATE INDEX entities_discount_status ON entities (tenant_id, (state ->> 'approval_status'))
    WHERE entity_type = 'discount';

CALL enable_tenant_isolation('approval_rules');
