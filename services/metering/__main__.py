from services.metering.app import create_app
from services.metering.settings import MeteringSettings
from shared.serve import serve

serve(MeteringSettings(), create_app)  # type: ignore[arg-type]
