"""The dashboard's settings: where the services' HTTP APIs are, and the key its session cookie is signed with.

No database and no broker: the dashboard only calls the services' APIs with the signed-in user's token.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "dashboard"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    session_secret: str = Field(
        min_length=32,
        description="Key the session cookie is signed with (itsdangerous); keep it secret, 32+ characters",
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60, description="How long a sign-in lasts at most")
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (on wherever TLS terminates)"
    )
    auth_public_keys: str = Field(
        default="",
        description="JSON object of key id to Ed25519 public PEM; the dashboard reads the signed-in user's role "
        "from their verified token to decide which actions to show (the services enforce them anyway)",
    )
    catalog_url: str = Field(default="http://127.0.0.1:8101", description="Base URL of catalog's HTTP API")
    metering_url: str = Field(default="http://127.0.0.1:8102", description="Base URL of metering's HTTP API")
    rating_url: str = Field(default="http://127.0.0.1:8103", description="Base URL of rating's HTTP API")
    tax_currency_url: str = Field(default="http://127.0.0.1:8104", description="Base URL of tax-currency's API")
    invoicing_url: str = Field(default="http://127.0.0.1:8105", description="Base URL of invoicing's HTTP API")
    approvals_url: str = Field(default="http://127.0.0.1:8106", description="Base URL of approvals' HTTP API")
    notification_url: str = Field(default="http://127.0.0.1:8107", description="Base URL of notification's API")
    api_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one call to a service")

    def service_urls(self) -> dict[str, str]:
        return {
            "catalog": self.catalog_url,
            "metering": self.metering_url,
            "rating": self.rating_url,
            "tax_currency": self.tax_currency_url,
            "invoicing": self.invoicing_url,
            "approvals": self.approvals_url,
            "notification": self.notification_url,
        }
