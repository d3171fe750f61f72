"""Postgres plumbing: pools, tenant-scoped units of work, provisioning, migrations."""
