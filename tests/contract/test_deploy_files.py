"""The production stack: `Dockerfile`, `docker-compose.yml` and `deploy/` stay in step with the code.

Services, roles and schemas come from shared/services.py, consumer groups from shared/topology.py and
partition counts from shared/topics.py. Adding a service, a subscription or a topic without its deploy
files fails here.

All of it runs offline. The YAML checks need PyYAML and are skipped without it. The Postgres init script
runs under bash with a fake `psql` that records the SQL. `docker compose config` and `kubectl kustomize`
run only where those tools are installed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from shared.auth import Principal, TokenIssuer, TokenVerifier, generate_key_pair
from shared.contracts.catalog import Role
from shared.services import SERVICES, ServiceSpec, service
from shared.settings import ServiceSettings
from shared.topics import PRIMARY_TOPICS
from shared.topology import SUBSCRIPTIONS, Subscription, of_service

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "initdb" / "10-billing.sh"
K8S = ROOT / "deploy" / "k8s"
README = ROOT / "deploy" / "README.md"

DATABASE = "billing"
NAMESPACE = "msp-billing"
# What every service process needs besides what its settings class requires.
PROCESS_ENV = {
    "SERVICE_NAME",
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_IDEMPOTENT_PRODUCER",
    "HTTP_HOST",
    "HTTP_PORT",
    "LOG_FORMAT",
    "AUTH_PUBLIC_KEYS",  # optional to the settings class, but without it no token verifies
}
# Token signing: only catalog holds the private key; every service verifies with the public keys.
SIGNING_SETTINGS = {"AUTH_PRIVATE_KEY", "AUTH_KEY_ID"}
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"
# Inside a container the HTTP server must listen beyond loopback.
CONTAINER_HTTP = ("0.0.0.0", 8000, "json")  # noqa: S104
# Catalog runs the wall-clock scheduler in every process, so it runs as exactly one replica. Its consumer
# groups (approval rules and decisions: a few messages per tenant) therefore get no KEDA trigger: lag could
# never add a replica, and a ScaledObject would own an HPA on a Deployment that must stay at 1.
# The test clock in catalog waits for every other service's outbox (GET /health/outbox): each at its own name.
OTHER_SERVICE_URLS = {s.name: f"http://{s.name.replace('_', '-')}:8000" for s in SERVICES if s.name != "catalog"}


def k8s_name(spec: ServiceSpec) -> str:
    """Kubernetes names cannot hold underscores (tax_currency -> tax-currency); compose uses the same names."""
    return spec.name.replace("_", "-")


def password_var(spec: ServiceSpec, kind: str) -> str:
    return f"{spec.name.upper()}_{kind}_PASSWORD"


def service_ids(specs: tuple[ServiceSpec, ...] = SERVICES) -> list[str]:
    return [s.name for s in specs]


CONSUMERS = tuple(s for s in SERVICES if of_service(s.name))
NON_CONSUMERS = tuple(s for s in SERVICES if not of_service(s.name))
AUTOSCALED = SERVICES  # catalog too: its scheduler ticks from one replica at a time (a lease)


def yaml_module() -> Any:
    return pytest.importorskip("yaml", reason="PyYAML is not installed, so the YAML files cannot be read")


class MissingVariable(Exception):
    """A `${VAR:?message}` / `${VAR?message}` whose variable is not set: compose refuses the file."""


def interpolate(value: str, env: Mapping[str, str] | None = None) -> str:
    """What compose makes of `${VAR}`, `${VAR:-default}` and `${VAR:?message}` (and the colon-less forms)
    given `env`, by default nothing set in the environment. A required variable that is missing raises."""
    given = env or {}

    def resolve(match: re.Match[str]) -> str:
        name, colon, operator, argument = match.groups()
        found = given.get(name)
        if found is not None and not (colon and found == ""):
            return found
        if operator == "?":
            raise MissingVariable(f"{name}: {argument}")
        return argument if operator == "-" else ""

    return re.sub(r"\$\{(\w+)(?:(:?)([-?])([^}]*))?\}", resolve, value)


def settings_class(spec: ServiceSpec) -> type[ServiceSettings]:
    module = importlib.import_module(f"{spec.module}.settings")
    found = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings
    ]
    assert len(found) == 1, f"{spec.module}.settings should define one ServiceSettings subclass"
    return found[0]


def env_names(cls: type[ServiceSettings]) -> dict[str, bool]:
    """Environment variable name of every setting -> whether it is required."""
    return {(f.alias or name).upper(): f.is_required() for name, f in cls.model_fields.items()}


def load_settings(cls: type[ServiceSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build the service's settings from exactly `env`, as the container would."""
    for name in env_names(cls):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls()


# --- Dockerfile ----------------------------------------------------------------------------------------


class TestDockerfile:
    text = DOCKERFILE.read_text()

    def test_builds_from_python_3_11_slim(self) -> None:
        assert "python:3.11-slim" in self.text

    def test_installs_dependencies_with_the_lock_as_constraints(self) -> None:
        assert re.search(r"^COPY .*requirements\.lock", self.text, re.M)
        assert "-c requirements.lock" in self.text

    def test_ships_the_shared_and_services_packages(self) -> None:
        assert re.search(r"^COPY shared\b", self.text, re.M)
        assert re.search(r"^COPY services\b", self.text, re.M)

    def test_runs_as_a_non_root_user(self) -> None:
        users = re.findall(r"^USER\s+(\S+)", self.text, re.M)
        assert users, "the image must switch to a non-root user"
        assert users[-1].split(":")[0] not in {"root", "0"}

    def test_healthcheck_uses_python_on_liveness(self) -> None:
        check = re.search(r"^HEALTHCHECK.*?CMD (.*)$", self.text, re.M | re.S)
        assert check is not None
        assert '"python"' in check.group(1)
        assert "/health/live" in check.group(1)

    def test_default_command_starts_nothing(self) -> None:
        cmd = re.findall(r"^CMD (.*)$", self.text, re.M)[-1]
        assert "--help" in cmd

    def test_dockerignore_keeps_local_state_out(self) -> None:
        ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
        assert {".venv", ".local", ".git", "**/__pycache__", ".pytest_cache"} <= ignored


# --- Postgres init script ------------------------------------------------------------------------------


@pytest.fixture
def run_init_script(tmp_path: Path) -> Any:
    """Run the init script with a `psql` that records its arguments and the SQL it is given."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "psql.log"
    fake = bin_dir / "psql"
    fake.write_text('#!/usr/bin/env bash\n{ echo "-- psql $*"; cat; } >> "$PSQL_LOG"\n')
    fake.chmod(0o755)

    def run(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
        full_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PSQL_LOG": str(log), **env}
        result = subprocess.run(
            ["bash", str(INIT_SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60, check=False
        )
        return result, log.read_text() if log.exists() else ""

    return run


def role_passwords() -> dict[str, str]:
    return {password_var(s, kind): f"{s.name}-{kind.lower()}-pw" for s in SERVICES for kind in ("OWNER", "APP")}


class TestPostgresInitScript:
    def test_creates_the_billing_database(self, run_init_script: Any) -> None:
        result, sql = run_init_script({"POSTGRES_USER": "postgres", **role_passwords()})
        assert result.returncode == 0, result.stderr
        assert f"CREATE DATABASE {DATABASE}" in sql
        assert f"--dbname {DATABASE}" in sql
        assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC;" in sql

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_creates_each_services_schema_owner_and_runtime_role(self, run_init_script: Any, spec: ServiceSpec) -> None:
        result, sql = run_init_script({"POSTGRES_USER": "postgres", **role_passwords()})
        assert result.returncode == 0, result.stderr
        s, owner, app = spec.schema, spec.owner_role, spec.app_role
        passwords = role_passwords()
        for role, kind in ((owner, "OWNER"), (app, "APP")):
            assert f"CREATE ROLE {role};" in sql
            assert f"ALTER ROLE {role} {ROLE_ATTRIBUTES} PASSWORD '{passwords[password_var(spec, kind)]}';" in sql
        assert f"CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {owner};" in sql
        assert f"GRANT USAGE ON SCHEMA {s} TO {app};" in sql
        assert f"ALTER ROLE {app} SET search_path = {s};" in sql
        assert f"ALTER ROLE {owner} SET search_path = {s};" in sql

    def test_provisions_exactly_the_declared_services(self, run_init_script: Any) -> None:
        result, sql = run_init_script({"POSTGRES_USER": "postgres", **role_passwords()})
        assert result.returncode == 0, result.stderr
        schemas = set(re.findall(r"CREATE SCHEMA IF NOT EXISTS (\w+) ", sql))
        assert schemas == {s.schema for s in SERVICES}

    def test_takes_passwords_from_the_environment_or_a_secret_file(self, run_init_script: Any, tmp_path: Path) -> None:
        secret_file = tmp_path / "catalog-app"
        secret_file.write_text("from-a-file")
        env = {**role_passwords(), "METERING_APP_PASSWORD": "it's-quoted"}
        del env["CATALOG_APP_PASSWORD"]
        result, sql = run_init_script({**env, "CATALOG_APP_PASSWORD_FILE": str(secret_file)})
        assert result.returncode == 0, result.stderr
        assert f"ALTER ROLE catalog_owner {ROLE_ATTRIBUTES} PASSWORD 'catalog-owner-pw';" in sql
        assert f"ALTER ROLE catalog_app {ROLE_ATTRIBUTES} PASSWORD 'from-a-file';" in sql
        assert "PASSWORD 'it''s-quoted';" in sql

    def test_refuses_to_create_anything_without_every_password(self, run_init_script: Any) -> None:
        env = role_passwords()
        del env["NOTIFICATION_OWNER_PASSWORD"]
        result, sql = run_init_script(env)
        assert result.returncode != 0
        assert "NOTIFICATION_OWNER_PASSWORD" in result.stderr
        assert sql == ""


# --- docker-compose.yml --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml_module().safe_load(COMPOSE.read_text())
    return data


COMPOSE_SECRETS = [
    "ADMIN_TOKEN",
    "APPROVALS_APP_PASSWORD",
    "APPROVALS_OWNER_PASSWORD",
    "CATALOG_APP_PASSWORD",
    "CATALOG_OWNER_PASSWORD",
    "DASHBOARD_SESSION_SECRET",
    "INVOICING_APP_PASSWORD",
    "INVOICING_OWNER_PASSWORD",
    "METERING_APP_PASSWORD",
    "METERING_OWNER_PASSWORD",
    "NOTIFICATION_APP_PASSWORD",
    "NOTIFICATION_OWNER_PASSWORD",
    "POSTGRES_PASSWORD",
    "RATING_APP_PASSWORD",
    "RATING_OWNER_PASSWORD",
    "TAX_CURRENCY_APP_PASSWORD",
    "TAX_CURRENCY_OWNER_PASSWORD",
]
"""Compose has no development defaults for these: it refuses to start without them (deploy/README.md)."""


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    """What deploy/README.md has you put in `.env` beside docker-compose.yml: a fresh signing key pair and
    notification's key for tenant secrets at rest."""
    private_pem, public_pem = generate_key_pair()
    return {
        "AUTH_PRIVATE_KEY": private_pem,
        "AUTH_KEY_ID": "test-2026-11",
        "AUTH_PUBLIC_KEYS": json.dumps({"test-2026-11": public_pem}),
        "NOTIFICATION_SECRETS_KEYS": Fernet.generate_key().decode(),
    } | {name: secrets.token_urlsafe(24) for name in COMPOSE_SECRETS}


def service_env(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = compose["services"][name].get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


class TestCompose:
    def test_uses_the_compose_spec_without_a_version_key(self, compose: dict[str, Any]) -> None:
        assert "version" not in compose

    def test_kafka_runs_in_kraft_mode_without_zookeeper(self, compose: dict[str, Any]) -> None:
        kafka = compose["services"]["kafka"]
        env = service_env(compose, "kafka")
        assert kafka["image"].startswith("apache/kafka:")
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        for key in (
            "KAFKA_NODE_ID",
            "KAFKA_LISTENERS",
            "KAFKA_ADVERTISED_LISTENERS",
            "KAFKA_CONTROLLER_LISTENER_NAMES",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
        ):
            assert env.get(key), f"kafka needs {key}"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
        for name, svc in compose["services"].items():
            assert "zookeeper" not in f"{name} {svc.get('image', '')}".lower()
            assert not any("ZOOKEEPER" in key for key in service_env(compose, name)), name
        assert "kafka-broker-api-versions.sh" in str(kafka["healthcheck"]["test"])

    def test_topics_come_only_from_the_topics_job(self, compose: dict[str, Any]) -> None:
        assert service_env(compose, "kafka")["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        topics = compose["services"]["topics"]
        assert topics["command"][:5] == ["python", "-m", "shared.cli", "topics", "create"]
        assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert service_env(compose, "topics")["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"

    def test_postgres_18_runs_the_init_script_on_first_start(self, compose: dict[str, Any]) -> None:
        postgres = compose["services"]["postgres"]
        assert postgres["image"] == "postgres:18"
        assert "./deploy/postgres/initdb:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
        assert "pg_isready" in str(postgres["healthcheck"]["test"])
        assert service_env(compose, "postgres")["POSTGRES_PASSWORD"]

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_postgres_gets_every_role_password_and_there_is_no_default(
        self, compose: dict[str, Any], spec: ServiceSpec, dotenv: dict[str, str]
    ) -> None:
        env = service_env(compose, "postgres")
        for kind in ("OWNER", "APP"):
            name = password_var(spec, kind)
            assert interpolate(env[name], dotenv) == dotenv[name]
            with pytest.raises(MissingVariable, match=r"deploy/README\.md"):  # issue 17: no development fallback
                interpolate(env[name])

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_runs_from_the_one_image(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        svc = compose["services"][k8s_name(spec)]
        assert svc["build"]["context"] == "."
        assert svc["command"] == ["python", "-m", spec.module]

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_gets_the_environment_its_settings_need(
        self, compose: dict[str, Any], spec: ServiceSpec, dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {k: interpolate(v, dotenv) for k, v in service_env(compose, k8s_name(spec)).items()}
        cls = settings_class(spec)
        names = env_names(cls)
        required = {name for name, is_required in names.items() if is_required}
        assert PROCESS_ENV | required <= env.keys()
        assert env.keys() <= names.keys(), f"not settings of {spec.name}: {sorted(env.keys() - names.keys())}"
        settings = load_settings(cls, env, monkeypatch)
        assert settings.service_name == spec.name
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.kafka_idempotent_producer is True
        assert (settings.http_host, settings.http_port, settings.log_format) == CONTAINER_HTTP
        url = urlsplit(settings.database_url)
        assert (url.username, url.hostname, url.path) == (spec.app_role, "postgres", f"/{DATABASE}")

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_the_signing_keys_have_no_default(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        env = service_env(compose, k8s_name(spec))
        wanted = {"AUTH_PUBLIC_KEYS"} | (SIGNING_SETTINGS if spec.name == "catalog" else set())
        assert wanted <= env.keys()
        assert not SIGNING_SETTINGS & env.keys() - wanted, f"only catalog holds the signing key, not {spec.name}"
        for name in wanted:
            with pytest.raises(MissingVariable, match=r"deploy/README\.md"):
                interpolate(env[name])

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_tokens_catalog_signs_verify_in_each_service(
        self, compose: dict[str, Any], spec: ServiceSpec, dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def settings_of(name: str) -> Any:
            spec_ = next(s for s in SERVICES if s.name == name)
            env = {k: interpolate(v, dotenv) for k, v in service_env(compose, k8s_name(spec_)).items()}
            return load_settings(settings_class(spec_), env, monkeypatch)

        catalog = settings_of("catalog")
        issuer = TokenIssuer(private_key_pem=catalog.auth_private_key, key_id=catalog.auth_key_id)
        principal = Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=Role.ADMIN)
        token = issuer.issue(principal, now=datetime.now(UTC), ttl=timedelta(minutes=catalog.token_ttl_minutes))
        verifier = TokenVerifier.from_setting(settings_of(spec.name).auth_public_keys)
        assert verifier.verify(token) == principal

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_uses_the_password_postgres_gave_its_roles(
        self, compose: dict[str, Any], spec: ServiceSpec
    ) -> None:
        postgres = service_env(compose, "postgres")
        app_url = service_env(compose, k8s_name(spec))["DATABASE_URL"]
        owner_url = service_env(compose, f"migrate-{k8s_name(spec)}")["MIGRATION_DATABASE_URL"]
        assert postgres[password_var(spec, "APP")] in app_url
        assert postgres[password_var(spec, "OWNER")] in owner_url

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_is_checked_for_readiness(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        check = compose["services"][k8s_name(spec)]["healthcheck"]
        assert check["test"][0] == "CMD"
        assert "/health/ready" in " ".join(check["test"])

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_waits_for_kafka_topics_and_its_migrations(
        self, compose: dict[str, Any], spec: ServiceSpec
    ) -> None:
        depends = compose["services"][k8s_name(spec)]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert depends[f"migrate-{k8s_name(spec)}"]["condition"] == "service_completed_successfully"

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_is_migrated_as_its_owner(
        self, compose: dict[str, Any], spec: ServiceSpec, dotenv: dict[str, str]
    ) -> None:
        job = compose["services"][f"migrate-{k8s_name(spec)}"]
        assert job["command"] == ["python", "-m", "shared.cli", "db", "migrate", spec.name]
        assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = service_env(compose, f"migrate-{k8s_name(spec)}")
        url = urlsplit(interpolate(env["MIGRATION_DATABASE_URL"], dotenv))
        assert (url.username, url.hostname, url.path) == (spec.owner_role, "postgres", f"/{DATABASE}")

    def test_catalog_reads_every_other_services_outbox_at_its_compose_name(
        self, compose: dict[str, Any], dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {k: interpolate(v, dotenv) for k, v in service_env(compose, "catalog").items()}
        settings = load_settings(settings_class(service("catalog")), env, monkeypatch)
        assert settings.other_services() == OTHER_SERVICE_URLS

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_host_ports_mirror_the_local_stack(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        ports = compose["services"][k8s_name(spec)]["ports"]
        assert [(str(p["published"]), p["target"]) for p in ports] == [(str(spec.local_port), 8000)]


def compose_plugin_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


@pytest.mark.needs_docker
@pytest.mark.skipif(not compose_plugin_available(), reason="the docker compose plugin is not installed")
def test_docker_compose_accepts_the_file(dotenv: dict[str, str]) -> None:
    def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        # An empty --env-file so that a developer's own .env cannot stand in for what the test gives.
        return subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "--env-file", os.devnull, "config", "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    bare = {k: v for k, v in os.environ.items() if k not in dotenv}
    result = config({**bare, **dotenv})
    assert result.returncode == 0, result.stderr
    refused = config(bare)
    assert refused.returncode != 0
    assert "deploy/README.md" in refused.stderr


# --- Kubernetes ----------------------------------------------------------------------------------------


class Manifests:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        for doc in self.docs:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        return None

    def get(self, kind: str, name: str) -> dict[str, Any]:
        doc = self.find(kind, name)
        assert doc is not None, f"no {kind} {name} in deploy/k8s"
        return doc

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]


@pytest.fixture(scope="module")
def k8s() -> Manifests:
    yaml = yaml_module()
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return Manifests(docs)


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def container_env(k8s: Manifests, workload: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom, then env with $(VAR) expanded.
    A secret's value stands in as `secret:<key>`."""
    c = container(workload)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s.get("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(var["value"]))
        else:
            env[var["name"]] = f"secret:{var['valueFrom']['secretKeyRef']['key']}"
    return env


def secret_ref(workload: dict[str, Any], name: str) -> dict[str, str] | None:
    """The Secret and key the container's `name` comes from, if it comes from one."""
    for var in container(workload).get("env", []):
        if var["name"] == name and "secretKeyRef" in var.get("valueFrom", {}):
            ref: dict[str, str] = var["valueFrom"]["secretKeyRef"]
            return ref
    return None


def consumed_partitions(groups: set[str]) -> int:
    return min(s.topic.partitions for s in SUBSCRIPTIONS if s.group in groups)


class TestKubernetesServices:
    def test_every_manifest_lives_in_the_namespace(self, k8s: Manifests) -> None:
        for doc in k8s.docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_has_a_deployment_and_a_service(self, k8s: Manifests, spec: ServiceSpec) -> None:
        deployment = k8s.get("Deployment", k8s_name(spec))
        c = container(deployment)
        assert c["command"] == ["python", "-m", spec.module]
        assert c["image"] == "msp-billing"
        service = k8s.get("Service", k8s_name(spec))
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["port"] == 8000

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_is_probed_on_its_health_endpoints(self, k8s: Manifests, spec: ServiceSpec) -> None:
        c = container(k8s.get("Deployment", k8s_name(spec)))
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_runs_non_root_with_bounded_resources(self, k8s: Manifests, spec: ServiceSpec) -> None:
        deployment = k8s.get("Deployment", k8s_name(spec))
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= c["resources"]["limits"].keys()

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_is_scraped_by_prometheus(self, k8s: Manifests, spec: ServiceSpec) -> None:
        annotations = k8s.get("Deployment", k8s_name(spec))["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == "8000"

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_gets_the_environment_its_settings_need(
        self, k8s: Manifests, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = container_env(k8s, k8s.get("Deployment", k8s_name(spec)))
        cls = settings_class(spec)
        required = {name for name, is_required in env_names(cls).items() if is_required}
        assert PROCESS_ENV | required <= env.keys()
        settings = load_settings(cls, env, monkeypatch)
        assert settings.service_name == spec.name
        assert settings.kafka_idempotent_producer is True
        assert (settings.http_host, settings.http_port, settings.log_format) == CONTAINER_HTTP
        url = urlsplit(settings.database_url)
        assert url.username == spec.app_role
        assert url.password == f"secret:{password_var(spec, 'APP')}"
        assert url.path == f"/{DATABASE}"

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_verifies_tokens_with_the_shared_public_keys(self, k8s: Manifests, spec: ServiceSpec) -> None:
        env = container_env(k8s, k8s.get("Deployment", k8s_name(spec)))
        config = k8s.get("ConfigMap", "msp-billing-config")["data"]
        assert env["AUTH_PUBLIC_KEYS"] == config["AUTH_PUBLIC_KEYS"], "public keys come from the ConfigMap"
        keys = json.loads(env["AUTH_PUBLIC_KEYS"])
        assert isinstance(keys, dict)
        assert keys
        assert all(isinstance(pem, str) and "PUBLIC KEY" in pem for pem in keys.values())
        if spec.name != "catalog":
            assert "AUTH_PRIVATE_KEY" not in env, "only catalog holds the signing key"

    def test_catalog_reads_every_other_services_outbox_at_its_cluster_name(
        self, k8s: Manifests, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = container_env(k8s, k8s.get("Deployment", "catalog"))
        settings = load_settings(settings_class(service("catalog")), env, monkeypatch)
        assert settings.other_services() == OTHER_SERVICE_URLS

    def test_catalog_signs_with_the_private_key_from_a_secret(self, k8s: Manifests) -> None:
        deployment = k8s.get("Deployment", "catalog")
        env = container_env(k8s, deployment)
        assert secret_ref(deployment, "AUTH_PRIVATE_KEY") == {
            "name": "msp-billing-signing-key",
            "key": "AUTH_PRIVATE_KEY",
        }
        assert "AUTH_PRIVATE_KEY" in k8s.get("Secret", "msp-billing-signing-key")["stringData"]
        assert "AUTH_PRIVATE_KEY" not in k8s.get("ConfigMap", "msp-billing-config")["data"]
        assert env["AUTH_KEY_ID"] in json.loads(env["AUTH_PUBLIC_KEYS"]), "AUTH_KEY_ID must name a public key"

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_each_service_is_migrated_by_a_job_as_its_owner(self, k8s: Manifests, spec: ServiceSpec) -> None:
        job = k8s.get("Job", f"migrate-{k8s_name(spec)}")
        assert container(job)["command"] == ["python", "-m", "shared.cli", "db", "migrate", spec.name]
        url = urlsplit(container_env(k8s, job)["MIGRATION_DATABASE_URL"])
        assert url.username == spec.owner_role
        assert url.password == f"secret:{password_var(spec, 'OWNER')}"

    def test_a_job_creates_the_topics(self, k8s: Manifests) -> None:
        job = k8s.get("Job", "create-topics")
        assert container(job)["command"][:5] == ["python", "-m", "shared.cli", "topics", "create"]
        assert "KAFKA_BOOTSTRAP_SERVERS" in container_env(k8s, job)

    def test_the_secret_template_holds_every_password_and_no_secret(self, k8s: Manifests) -> None:
        db = k8s.get("Secret", "msp-billing-db")["stringData"]
        assert set(db) == {password_var(s, kind) for s in SERVICES for kind in ("OWNER", "APP")}
        for secret in k8s.of_kind("Secret"):
            assert set(secret["stringData"].values()) == {"REPLACE_ME"}, secret["metadata"]["name"]

    def test_kustomizations_list_every_manifest_but_the_secret_template(self) -> None:
        yaml = yaml_module()
        listed: set[Path] = set()
        for kustomization in K8S.rglob("kustomization.yaml"):
            for resource in yaml.safe_load(kustomization.read_text()).get("resources", []):
                path = (kustomization.parent / resource).resolve()
                assert path.exists(), f"{kustomization}: {resource} does not exist"
                listed.add(path)
        manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
        one_off = {(K8S / "secrets.template.yaml").resolve(), (K8S / "provision" / "db-provision.yaml").resolve()}
        assert manifests - listed == one_off


class TestKubernetesScaling:
    @pytest.mark.parametrize("spec", CONSUMERS, ids=service_ids(CONSUMERS))
    def test_consumers_scale_on_the_lag_of_every_group_they_belong_to(self, k8s: Manifests, spec: ServiceSpec) -> None:
        scaled = k8s.get("ScaledObject", k8s_name(spec))
        assert scaled["spec"]["scaleTargetRef"]["name"] == k8s_name(spec)
        triggers = scaled["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        watched = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in triggers}
        assert watched == {(s.group, s.topic.name) for s in of_service(spec.name)}
        assert k8s.find("HorizontalPodAutoscaler", k8s_name(spec)) is None, "KEDA owns this service's HPA"

    def test_every_consumer_group_is_watched(self, k8s: Manifests) -> None:
        watched = {t["metadata"]["consumerGroup"] for s in k8s.of_kind("ScaledObject") for t in s["spec"]["triggers"]}
        assert watched == {s.group for s in SUBSCRIPTIONS}

    def test_replicas_never_exceed_the_partitions_of_what_is_consumed(self, k8s: Manifests) -> None:
        by_group: dict[str, Subscription] = {s.group: s for s in SUBSCRIPTIONS}
        scaled_objects = k8s.of_kind("ScaledObject")
        assert scaled_objects
        for scaled in scaled_objects:
            groups = set()
            for trigger in scaled["spec"]["triggers"]:
                group, topic = trigger["metadata"]["consumerGroup"], trigger["metadata"]["topic"]
                assert group in by_group, f"{group} is not declared in shared/topology.py"
                assert topic == by_group[group].topic.name, f"{group} consumes {by_group[group].topic.name}"
                assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"
                groups.add(group)
            assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
            assert scaled["spec"]["maxReplicaCount"] <= consumed_partitions(groups), scaled["metadata"]["name"]

    def test_triggers_read_lag_from_the_configured_kafka(self, k8s: Manifests) -> None:
        bootstrap = k8s.get("ConfigMap", "msp-billing-config")["data"]["KAFKA_BOOTSTRAP_SERVERS"]
        for scaled in k8s.of_kind("ScaledObject"):
            for trigger in scaled["spec"]["triggers"]:
                assert trigger["metadata"]["bootstrapServers"] == bootstrap

    def test_services_that_consume_nothing_scale_on_cpu(self, k8s: Manifests) -> None:
        """Today every service consumes something; a new one that does not must get a CPU autoscaler."""
        for spec in NON_CONSUMERS:
            hpa = k8s.get("HorizontalPodAutoscaler", k8s_name(spec))
            target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": k8s_name(spec)}
            assert hpa["spec"]["scaleTargetRef"] == target
            assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
            assert k8s.find("ScaledObject", k8s_name(spec)) is None

    @pytest.mark.parametrize("spec", AUTOSCALED, ids=service_ids(AUTOSCALED))
    def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(self, k8s: Manifests, spec: ServiceSpec) -> None:
        assert "replicas" not in k8s.get("Deployment", k8s_name(spec))["spec"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", ["k8s", "k8s/jobs"])
def test_kustomize_builds(folder: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# --- the operator dashboard ---------------------------------------------------------------------------
# Not a service in shared/services.py (no schema, roles or consumer groups): one more process from the same
# image that calls every service's HTTP API, so each deploy file must point it at all seven.


def dashboard_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from services.dashboard.settings import DashboardSettings

    for name, field in DashboardSettings.model_fields.items():
        monkeypatch.delenv((field.alias or name).upper(), raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return DashboardSettings()  # type: ignore[call-arg]


class TestDashboardDeploy:
    def test_compose_runs_it_from_the_one_image_on_loopback_port_8100(self, compose: dict[str, Any]) -> None:
        dashboard = compose["services"]["dashboard"]
        assert dashboard["build"]["context"] == "."
        assert dashboard["command"] == ["python", "-m", "services.dashboard"]
        assert dashboard["ports"] == [{"target": 8000, "published": "8100", "host_ip": "127.0.0.1"}]
        assert "/health/ready" in str(dashboard["healthcheck"]["test"])

    def test_compose_points_it_at_every_service_with_the_public_keys(
        self, compose: dict[str, Any], dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = {k: interpolate(v, dotenv) for k, v in service_env(compose, "dashboard").items()}
        settings = dashboard_settings(env, monkeypatch)
        assert settings.service_urls() == {s.name: f"http://{k8s_name(s)}:8000" for s in SERVICES}
        assert (settings.http_host, settings.http_port, settings.log_format) == CONTAINER_HTTP
        assert settings.auth_public_keys == dotenv["AUTH_PUBLIC_KEYS"]
        assert "DATABASE_URL" not in env
        assert not SIGNING_SETTINGS & env.keys(), "the dashboard signs no tokens"

    def test_kubernetes_runs_it_non_root_probed_with_its_secret_and_every_service_url(
        self, k8s: Manifests, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deployment = k8s.get("Deployment", "dashboard")
        c = container(deployment)
        env = container_env(k8s, deployment)
        assert c["command"] == ["python", "-m", "services.dashboard"]
        assert k8s.get("Service", "dashboard")["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert secret_ref(deployment, "SESSION_SECRET") == {"name": "msp-billing-dashboard", "key": "SESSION_SECRET"}
        assert k8s.get("Secret", "msp-billing-dashboard")["stringData"] == {"SESSION_SECRET": "REPLACE_ME"}
        settings = dashboard_settings(env | {"SESSION_SECRET": "x" * 40}, monkeypatch)
        assert settings.service_urls() == {s.name: f"http://{k8s_name(s)}:8000" for s in SERVICES}
        assert settings.cookie_secure is True
        assert settings.auth_public_keys == k8s.get("ConfigMap", "msp-billing-config")["data"]["AUTH_PUBLIC_KEYS"]
        assert "AUTH_PRIVATE_KEY" not in env

    def test_kubernetes_scales_it_on_cpu(self, k8s: Manifests) -> None:
        hpa = k8s.get("HorizontalPodAutoscaler", "dashboard")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dashboard"}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert "replicas" not in k8s.get("Deployment", "dashboard")["spec"]


# --- deploy/README.md ----------------------------------------------------------------------------------


class TestReadme:
    text = README.read_text()

    @pytest.mark.parametrize("sub", SUBSCRIPTIONS, ids=lambda s: s.group)
    def test_lists_every_consumer_group_with_its_topic_and_partitions(self, sub: Subscription) -> None:
        assert f"| {sub.service} | `{sub.group}` | `{sub.topic.name}` | {sub.topic.partitions} |" in self.text

    @pytest.mark.parametrize("topic", PRIMARY_TOPICS, ids=lambda t: t.name)
    def test_lists_every_topic_with_its_partitions(self, topic: Any) -> None:
        assert f"| `{topic.name}` | {topic.partitions} |" in self.text

    @pytest.mark.parametrize("spec", SERVICES, ids=service_ids())
    def test_states_each_services_replica_ceiling(self, spec: ServiceSpec) -> None:
        subs = of_service(spec.name)
        row = re.search(rf"^\| {spec.name} \| [^|]+ \| 1 \| (\d+) \|", self.text, re.M)
        assert row is not None, f"no scaling row for {spec.name}"
        if subs:
            assert int(row.group(1)) == consumed_partitions({s.group for s in subs})
