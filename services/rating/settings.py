from __future__ import annotations

from shared.settings import ServiceSettings


class RatingSettings(ServiceSettings):
    service_name: str = "rating"
