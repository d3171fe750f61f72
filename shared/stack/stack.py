"""The whole platform on one machine, as `make run` and the test fixtures start it.

Order: Postgres (persistent) → broker (memory-only, fresh each start, so a new broker epoch) → topics →
schemas and roles → migrations → the seven services → the operator dashboard (it only calls their HTTP
APIs). On restart Postgres keeps its data and the broker starts empty: every service's outbox re-relays what
it retained (the epoch changed), and inboxes make the repeats harmless — nothing committed after metering
accepted a record is lost.

With ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` given (an existing Postgres superuser URL and broker),
the stack starts neither and uses those.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from shared.db.migrate import migrate_service
from shared.db.provision import RoleCredentials, dsn_for, ensure_database, provision_all, role_password
from shared.services import DASHBOARD_LOCAL_PORT, DASHBOARD_MODULE, SERVICES, ServiceSpec
from shared.stack.broker import EmbeddedBroker, create_topics
from shared.stack.postgres import EmbeddedPostgres
from shared.stack.procs import spawn, stop

DATABASE = "billing"
REPLICAS_MAX = 9
REPLICA_PORT_STEP = 100
"""Replica n of a service listens on its port + (n - 1) x 100 (rating: 8103, 8203, 8303 …)."""
LOCAL_KEY_ID = "local-1"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StackConfig:
    home: Path = REPO_ROOT / ".local"
    pg_port: int = 55432
    kafka_port: int = 19092
    port_offset: int = 0
    database_url: str | None = None  # an existing Postgres (superuser) instead of the embedded one
    kafka_bootstrap: str | None = None  # an existing broker instead of the embedded one
    log_format: str = "console"
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per service (default 1): ``MSP_REPLICAS=rating=2,metering=2`` or ``msp run --replicas``."""

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            home=Path(env.get("MSP_STACK_HOME", str(REPO_ROOT / ".local"))),
            pg_port=int(env.get("MSP_PG_PORT", "55432")),
            kafka_port=int(env.get("MSP_KAFKA_PORT", "19092")),
            port_offset=int(env.get("MSP_PORT_OFFSET", "0")),
            database_url=env.get("DATABASE_URL") or None,
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            log_format=env.get("LOG_FORMAT", "console"),
            replicas=parse_replicas(env.get("MSP_REPLICAS", "")),
        )


def parse_replicas(text: str) -> dict[str, int]:
    """``rating=2,metering=2`` → {"rating": 2, "metering": 2}; names are checked against the services."""
    known = {s.name for s in SERVICES}
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        if name.strip() not in known or not count.strip().isdigit() or not 1 <= int(count) <= REPLICAS_MAX:
            raise ValueError(f"replicas: {part!r} is not <service>=<1..{REPLICAS_MAX}> (services: {sorted(known)})")
        counts[name.strip()] = int(count)
    return counts


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.logs = config.home / "logs"
        self.secret = self._secret()
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.epoch: str | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        """Running processes by key: a service's name for its first replica, ``name#n`` for the n-th."""

    # -- addresses -----------------------------------------------------------------------------
    def _secret(self) -> str:
        path = self.config.home / "stack-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(24))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def admin_dsn(self) -> str:
        base = self.config.database_url or (self.postgres.admin_dsn if self.postgres else "")
        parts = urlsplit(base)
        return urlunsplit((parts.scheme, parts.netloc, f"/{DATABASE}", parts.query, ""))

    @property
    def bootstrap(self) -> str:
        return self.config.kafka_bootstrap or (self.broker.bootstrap if self.broker else "")

    def _signing_keys(self) -> tuple[str, str]:
        """The local stack's token-signing key pair, made once and kept beside the data (git-ignored)."""
        private, public = self.config.home / "auth-signing-key.pem", self.config.home / "auth-signing-key.pub"
        if not private.exists():
            from shared.auth import generate_key_pair

            private_pem, public_pem = generate_key_pair()
            private.write_text(private_pem)
            private.chmod(0o600)
            public.write_text(public_pem)
        return private.read_text(), public.read_text()

    @property
    def admin_token(self) -> str:
        return role_password("operator-api", secret=self.secret)

    def dsn(self, spec: ServiceSpec, *, owner: bool = False) -> str:
        role = spec.owner_role if owner else spec.app_role
        return dsn_for(self.admin_dsn, RoleCredentials(role, role_password(role, secret=self.secret)))

    def port(self, spec: ServiceSpec, replica: int = 1) -> int:
        return spec.local_port + self.config.port_offset + REPLICA_PORT_STEP * (replica - 1)

    def url(self, spec: ServiceSpec, replica: int = 1) -> str:
        return f"http://127.0.0.1:{self.port(spec, replica)}"

    def replicas(self, spec: ServiceSpec) -> int:
        return self.config.replicas.get(spec.name, 1)

    @staticmethod
    def key(spec: ServiceSpec, replica: int = 1) -> str:
        return spec.name if replica == 1 else f"{spec.name}#{replica}"

    @staticmethod
    def member(key: str) -> tuple[ServiceSpec, int] | None:
        """The service and replica number a process key names (None: the dashboard)."""
        name, _, number = key.partition("#")
        found = [s for s in SERVICES if s.name == name]
        return (found[0], int(number or 1)) if found else None

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{DASHBOARD_LOCAL_PORT + self.config.port_offset}"

    # -- infrastructure ------------------------------------------------------------------------
    def start_infrastructure(self) -> None:
        if self.config.database_url is None:
            self.postgres = EmbeddedPostgres(
                self.config.home / "pgdata", self.config.pg_port, self.config.home / "pg-superuser-password"
            )
            self.postgres.start(log_path=self.logs / "postgres.log")
        if self.config.kafka_bootstrap is None:
            self.broker = EmbeddedBroker(port=self.config.kafka_port)
            self.broker.start(log_path=self.logs / "broker.log")
            self.epoch = uuid.uuid4().hex  # a memory-only broker: a new one knows nothing of the last
        asyncio.run(self._prepare())

    async def _prepare(self) -> None:
        base = self.config.database_url or (self.postgres.admin_dsn if self.postgres else "")
        await ensure_database(base, DATABASE)
        await create_topics(self.bootstrap)
        await provision_all(self.admin_dsn, secret=self.secret)
        for spec in SERVICES:
            await migrate_service(self.dsn(spec, owner=True), spec)

    # -- services ------------------------------------------------------------------------------
    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSP_FAULT")}
        env.pop("DATABASE_URL", None)
        private_pem, public_pem = self._signing_keys()
        env.update(
            SERVICE_NAME=spec.name,
            DATABASE_URL=self.dsn(spec),
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(self.port(spec)),
            LOG_FORMAT=self.config.log_format,
            AUTH_PUBLIC_KEYS=json.dumps({LOCAL_KEY_ID: public_pem}),
            PYTHONPATH=str(REPO_ROOT),
        )
        if spec.name == "catalog":  # the only holder of the signing key and the operator token
            env.update(AUTH_PRIVATE_KEY=private_pem, AUTH_KEY_ID=LOCAL_KEY_ID, ADMIN_TOKEN=self.admin_token)
            # The test clock reads every other service's outbox backlog (GET /health/outbox).
            env.update({f"{other.name.upper()}_URL": self.url(other) for other in SERVICES if other != spec})
        if spec.name == "notification":  # the demo's mail sink and the specs' sinks listen on loopback
            env["OUTBOUND_ALLOW_HOSTS"] = "127.0.0.1,localhost,::1"
            # tenant secrets are encrypted at rest under a key derived from the stack's secret
            digest = hashlib.sha256(f"notification-secrets:{self.secret}".encode()).digest()
            env["SECRETS_KEYS"] = base64.urlsafe_b64encode(digest).decode()  # a Fernet key
        if spec.name == "invoicing":  # signs the clients' invoice links (local stack: derived from its secret)
            env["INVOICE_LINK_SECRET"] = role_password("invoice-links", secret=self.secret)
        if self.epoch:
            env["MSP_BROKER_EPOCH"] = self.epoch
            # Tansu holds a fetch for its full max wait even when data arrives; keep hops short locally.
            env["FETCH_MAX_WAIT_MS"] = "25"
        env.update(self.config.extra_env)
        return env

    def start_service(self, spec: ServiceSpec, *, extra_env: dict[str, str] | None = None, replica: int = 1) -> None:
        """Start one process of ``spec`` (replica n: its own port and log, the same consumer groups)."""
        env = self.service_env(spec) | {"HTTP_PORT": str(self.port(spec, replica))} | (extra_env or {})
        key = self.key(spec, replica)
        self.processes[key] = spawn(
            [sys.executable, "-m", spec.module],
            env=env,
            log_path=self.logs / f"{key}.log",
            cwd=REPO_ROOT,
            # If the stack itself dies, nothing is left to stop gracefully for: its services go at once.
            death_signal=signal.SIGKILL,
        )

    def dashboard_env(self) -> dict[str, str]:
        """The dashboard's environment: every service's URL, the public keys, its own cookie-signing key."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSP_FAULT")}
        env.pop("DATABASE_URL", None)
        _, public_pem = self._signing_keys()
        env.update(
            SERVICE_NAME="dashboard",
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(DASHBOARD_LOCAL_PORT + self.config.port_offset),
            LOG_FORMAT=self.config.log_format,
            AUTH_PUBLIC_KEYS=json.dumps({LOCAL_KEY_ID: public_pem}),
            SESSION_SECRET=role_password("dashboard-session", secret=self.secret),
            PYTHONPATH=str(REPO_ROOT),
            **{f"{spec.name.upper()}_URL": self.url(spec) for spec in SERVICES},
        )
        return env

    def start_dashboard(self) -> None:
        self.processes["dashboard"] = spawn(
            [sys.executable, "-m", DASHBOARD_MODULE],
            env=self.dashboard_env(),
            log_path=self.logs / "dashboard.log",
            cwd=REPO_ROOT,
            death_signal=signal.SIGKILL,
        )

    def wait_dashboard_ready(self, *, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                proc = self.processes.get("dashboard")
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"the dashboard exited; see {self.logs / 'dashboard.log'}")
                try:
                    if client.get(f"{self.dashboard_url}/health/ready").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the dashboard is not ready after {timeout_s}s")
                time.sleep(0.2)

    def restart(self, key: str) -> None:
        """Start the process ``key`` names again (the supervisor's call: shared/stack/supervisor.py)."""
        member = self.member(key)
        if member is None:
            self.start_dashboard()
        else:
            self.start_service(member[0], replica=member[1])

    def stop_service(self, name: str, *, kill: bool = False) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None:
            stop(proc, sig=signal.SIGKILL if kill else signal.SIGTERM)

    def wait_ready(self, names: list[str] | None = None, *, timeout_s: float = 180.0) -> None:
        """Block until each running process of the named services (every service when none is named) answers
        ready. One that exits fails at once; the timeout is only for one alive but slow (a loaded machine
        starting seven Python processes and their consumer groups)."""
        pending = {
            key: member
            for key in self.processes
            if (member := self.member(key)) is not None and (names is None or member[0].name in names)
        }
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for key, (spec, replica) in list(pending.items()):
                    proc = self.processes.get(key)
                    if proc is not None and proc.poll() is not None:
                        raise RuntimeError(f"{key} exited; see {self.logs / (key + '.log')}")
                    try:
                        if client.get(f"{self.url(spec, replica)}/health/ready").status_code == 200:
                            del pending[key]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout_s}s: {sorted(pending)}")
                time.sleep(0.2)

    def start_services(self) -> None:
        for spec in SERVICES:
            for replica in range(1, self.replicas(spec) + 1):
                self.start_service(spec, replica=replica)
        self.start_dashboard()
        self.wait_ready()
        self.wait_dashboard_ready()

    def up(self) -> Stack:
        self.start_infrastructure()
        self.start_services()
        return self

    def stop_services(self) -> None:
        """SIGTERM every service at once, then wait for each (each drains its batch and relay)."""
        procs = list(self.processes.values())
        self.processes.clear()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            stop(proc)

    def restart_broker(self) -> None:
        """Services down, a new empty broker (new epoch), topics, services up: what a restart of the local
        stack does to everything but Postgres."""
        if self.broker is None:
            raise RuntimeError("an external broker is in use; the stack does not restart it")
        self.stop_services()
        self.broker.stop()
        self.broker.start(log_path=self.logs / "broker.log")
        self.epoch = uuid.uuid4().hex
        asyncio.run(create_topics(self.bootstrap))
        self.start_services()

    def down(self) -> None:
        self.stop_services()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()
