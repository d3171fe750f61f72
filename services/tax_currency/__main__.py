from services.tax_currency.app import create_app
from services.tax_currency.settings import TaxCurrencySettings
from shared.serve import serve

serve(TaxCurrencySettings(), create_app)  # type: ignore[arg-type]
