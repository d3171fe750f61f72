"""The platform's services, named once: schema, roles, local HTTP port and consumer groups follow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    local_port: int

    @property
    def schema(self) -> str:
        return self.name

    @property
    def owner_role(self) -> str:
        """Owns the schema and its tables; migrations run as it."""
        return f"{self.name}_owner"

    @property
    def app_role(self) -> str:
        """What the running service logs in as: owns nothing, subject to row-level security."""
        return f"{self.name}_app"

    @property
    def local_url(self) -> str:
        """Its HTTP API on the local stack (`make run`), the default where a service's URL is a setting."""
        return f"http://127.0.0.1:{self.local_port}"

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    def consumer_group(self, purpose: str) -> str:
        return f"{self.name}.{purpose}"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("catalog", 8101),
    ServiceSpec("metering", 8102),
    ServiceSpec("rating", 8103),
    ServiceSpec("tax_currency", 8104),
    ServiceSpec("invoicing", 8105),
    ServiceSpec("approvals", 8106),
    ServiceSpec("notification", 8107),
)


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")


# The operator web dashboard: a process of its own, but not a service in the sense above — no schema, no roles,
# no consumer groups. It calls the services' HTTP APIs with the signed-in user's token.
DASHBOARD_MODULE = "services.dashboard"
DASHBOARD_LOCAL_PORT = 8100
