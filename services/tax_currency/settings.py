from __future__ import annotations

from shared.settings import ServiceSettings


class TaxCurrencySettings(ServiceSettings):
    service_name: str = "tax_currency"
