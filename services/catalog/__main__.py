from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings
from shared.serve import serve

serve(CatalogSettings(), create_app)  # type: ignore[arg-type]
