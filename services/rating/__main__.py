from services.rating.app import create_app
from services.rating.settings import RatingSettings
from shared.serve import serve

serve(RatingSettings(), create_app)  # type: ignore[arg-type]
