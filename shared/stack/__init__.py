"""The local stack: embedded PostgreSQL, the embedded Tansu broker, topics, roles, migrations, services."""
