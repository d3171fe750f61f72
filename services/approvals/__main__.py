from services.approvals.app import create_app
from services.approvals.settings import ApprovalsSettings
from shared.serve import serve

serve(ApprovalsSettings(), create_app)  # type: ignore[arg-type]
