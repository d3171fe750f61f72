"""The demo MSP as written in ``northwind.yaml``: its catalog document and what surrounds it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

DEFAULT_FILE = Path(__file__).with_name("northwind.yaml")


@dataclass(frozen=True)
class Scenario:
    tenant_id: UUID
    name: str
    timezone: str
    base_currency: str
    admin_email: str
    smtp_from: str
    month_start: date
    month_end: date
    tax_rates: list[dict[str, Any]]
    exchange_rates: list[dict[str, Any]]
    approver: UUID
    added_midway: str
    catalog: dict[str, Any]

    @property
    def days(self) -> int:
        return (self.month_end - self.month_start).days

    @property
    def companies(self) -> list[dict[str, Any]]:
        return list(self.catalog["companies"])

    def catalog_before_midway(self) -> dict[str, Any]:
        """The catalog without the service added midway (nor the plan lines selling it)."""
        document = copy.deepcopy(self.catalog)
        [late] = [s for s in document["services"] if s["code"] == self.added_midway]
        document["services"].remove(late)
        for plan in document["plans"]:
            plan["lines"] = [line for line in plan["lines"] if line.get("service_id") != late["service_id"]]
        return document


def load(path: Path = DEFAULT_FILE) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    msp, month = raw["msp"], raw["month"]
    return Scenario(
        tenant_id=UUID(msp["tenant_id"]),
        name=msp["name"],
        timezone=msp["timezone"],
        base_currency=msp["base_currency"],
        admin_email=msp["admin_email"],
        smtp_from=msp["smtp_from"],
        month_start=date.fromisoformat(month["start"]),
        month_end=date.fromisoformat(month["end"]),
        tax_rates=list(raw["tax_rates"]),
        exchange_rates=list(raw["exchange_rates"]),
        approver=UUID(raw["approver"]),
        added_midway=raw["added_midway"],
        catalog=dict(raw["catalog"]),
    )
