from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.ui import register_dashboard_card
        from reporting.views import pnl_card

        register_dashboard_card("pnl", pnl_card)
