"""The platform's kernel: contracts, money and periods, Kafka and Postgres plumbing, the local stack."""
