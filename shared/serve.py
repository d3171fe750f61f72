"""``python -m services.<name>``: configure logging and run the service's HTTP app (and its consumers)."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.logging import configure_logging
from shared.settings import ServiceSettings


def serve(settings: ServiceSettings, create_app: Callable[[ServiceSettings], FastAPI]) -> None:
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=settings.service_name)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
