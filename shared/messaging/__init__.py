"""Kafka plumbing: broker factory, batch consumption with inbox and dead letters, the outbox relay."""
