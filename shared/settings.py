"""Settings every service shares; each service extends `ServiceSettings` with its own fields.

Values come from the environment (the local stack and docker-compose set them per process).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = Field(description="The service this process runs (catalog, metering, …)")
    database_url: str = Field(description="Postgres URL of the service's runtime role (not the owner)")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092")
    kafka_idempotent_producer: bool = Field(
        default=False, description="On for Apache Kafka; the local Tansu broker does not support it"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    batch_max_records: int = Field(default=500, ge=1, le=10_000)
    batch_timeout_ms: int = Field(default=50, ge=1)
    fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        description="Longest a fetch waits at the broker for data. Apache Kafka answers as soon as data "
        "arrives; the local Tansu broker waits it out, so the local stack sets it low",
    )
    relay_batch_size: int = Field(default=500, ge=1)
    relay_idle_ms: int = Field(
        default=20,
        ge=1,
        description="Relay back-off unit: an idle relay re-checks after 10x this unless NOTIFY wakes it",
    )
    db_pool_max: int = Field(default=10, ge=1)
    consumer_stuck_after_s: float = Field(
        default=120.0,
        gt=0,
        description="Readiness turns red when one of this service's consumer groups has records to consume and "
        "has committed nothing for this long (a hung consumer, or a group that holds no partition)",
    )
    auth_public_keys: str = Field(
        default="",
        description="JSON object of key id to Ed25519 public PEM that bearer tokens may be signed with, "
        'e.g. {"2026-11": "-----BEGIN PUBLIC KEY-----…"}; several during a key rotation',
    )
    broker_epoch: str | None = Field(
        default=None,
        alias="MSP_BROKER_EPOCH",
        description="Set by the local stack to a fresh id whenever it starts a new (memory-only) broker, "
        "so outboxes re-relay what the lost broker may not have delivered",
    )
    fault_point: str | None = Field(
        default=None,
        alias="MSP_FAULT_POINT",
        description="Test-only: the named point at which this process kills itself with SIGKILL",
    )
