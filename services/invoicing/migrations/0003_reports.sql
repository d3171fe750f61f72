-- depends: 0002_invoice_lifecycle

-- Reports (services/invoicing/reports.py): the tenant's base currency, which currency totals convert to.
-- Plans and service categories join the catalog read model in catalog_entities (no schema change): billed
-- amounts group invoice lines by their plan's type and their service's category.
ALTER TABLE tenants ADD COLUMN base_currency char(3);

-- Billing reports and currency totals select issued invoices by period start.
CREATE INDEX invoices_by_period_start ON invoices (tenant_id, period_start);
