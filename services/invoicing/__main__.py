from services.invoicing.app import create_app
from services.invoicing.settings import InvoicingSettings
from shared.serve import serve

serve(InvoicingSettings(), create_app)  # type: ignore[arg-type]
