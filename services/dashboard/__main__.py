import uvicorn

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from shared.logging import configure_logging

settings = DashboardSettings()  # session_secret comes from the environment
configure_logging(fmt=settings.log_format, level=settings.log_level, service=settings.service_name)
uvicorn.run(
    create_app(settings),
    host=settings.http_host,
    port=settings.http_port,
    log_config=None,
    access_log=False,
    timeout_graceful_shutdown=10,
)
