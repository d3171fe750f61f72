"""One local stack per test session (the same code as `make run`), on free ports in a temporary home."""

from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.services import DASHBOARD_LOCAL_PORT, SERVICES
from shared.stack.stack import Stack, StackConfig
from tests.support.containers import container_backends, use_containers


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _pick_ports() -> tuple[int, int, int]:
    # Random, so concurrent test sessions (CI, a developer's second terminal) do not race for the same ports;
    # and all below the kernel's ephemeral range (32768+), where any outgoing connection may take a port
    # between our check and the server's bind.
    rng = random.SystemRandom()
    for _ in range(200):
        offset = rng.randrange(1000, 20000)
        k = rng.randrange(0, 1000)
        pg, kafka = 28200 + k, 29300 + k
        ports = [pg, kafka, DASHBOARD_LOCAL_PORT + offset, *(s.local_port + offset for s in SERVICES)]
        if all(_free(p) for p in ports):
            return pg, kafka, offset
    raise RuntimeError("no free ports for the test stack")


def start_test_stack() -> Iterator[Stack]:
    """The embedded stack by default; Postgres and Kafka in containers where Docker answers (or when
    MSP_TEST_BACKEND=containers); an existing pair with TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS."""
    database_url = os.environ.get("TEST_DATABASE_URL") or None
    kafka_bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or None
    if database_url is None and kafka_bootstrap is None and use_containers():
        with container_backends() as (database_url, kafka_bootstrap):
            yield from _run(database_url, kafka_bootstrap)
    else:
        yield from _run(database_url, kafka_bootstrap)


def _run(database_url: str | None, kafka_bootstrap: str | None) -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="msp-test-stack-"))
    pg, kafka, offset = _pick_ports()
    config = StackConfig(
        home=home,
        pg_port=pg,
        kafka_port=kafka,
        port_offset=offset,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        # every spec signs in from 127.0.0.1: the per-client sign-in limit is the throttle specs' own business
        extra_env={"CLOCK_TICK_SECONDS": "3600", "BATCH_TIMEOUT_MS": "20", "SIGNIN_LIMIT_PER_CLIENT": "100000/minute"},
    )
    stack = Stack(config)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        if os.environ.get("MSP_KEEP_TEST_STACK") != "1":
            shutil.rmtree(home, ignore_errors=True)
