-- depends: 0002_records_by_month

-- "No plan in force" is judged on the record's day in the tenant's time zone, as rating judges which plan prices
-- it (docs/billing-rules.md §1), so metering keeps the tenant's time zone. NULL until the tenant's catalog event
-- arrives again (`msp catalog republish` sends it); until then UTC is used, as before.
ALTER TABLE known_tenants ADD COLUMN timezone text;
