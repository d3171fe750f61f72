from __future__ import annotations

from shared.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    service_name: str = "metering"
