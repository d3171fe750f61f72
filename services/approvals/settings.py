from __future__ import annotations

from shared.settings import ServiceSettings


class ApprovalsSettings(ServiceSettings):
    service_name: str = "approvals"
