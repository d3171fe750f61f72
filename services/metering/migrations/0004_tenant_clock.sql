-- depends: 0003_tenant_time_zone

-- The accepted time window (domain/window.py) is around the tenant's billing time: metering keeps the tenant's
-- mode (live or sandbox, from catalog) and its clock (the last tick on billing.clock.v1).
ALTER TABLE known_tenants ADD COLUMN mode text, ADD COLUMN clock timestamptz;
