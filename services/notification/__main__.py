from services.notification.app import create_app
from services.notification.settings import NotificationSettings
from shared.serve import serve

serve(NotificationSettings(), create_app)  # type: ignore[arg-type]
