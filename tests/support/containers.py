"""The optional testcontainers path: real Postgres 18 and Apache Kafka in containers, where Docker answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def use_containers() -> bool:
    """``MSP_TEST_BACKEND=embedded|containers`` decides; unset, containers are used where Docker answers."""
    backend = os.environ.get("MSP_TEST_BACKEND", "")
    if backend:
        return backend == "containers"
    return docker_available()


@contextmanager
def container_backends() -> Iterator[tuple[str, str]]:
    """Yield (superuser Postgres URL, Kafka bootstrap) of freshly started containers."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with (
        PostgresContainer("postgres:18", driver=None) as pg,
        KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka,
    ):
        yield pg.get_connection_url(), kafka.get_bootstrap_server()
