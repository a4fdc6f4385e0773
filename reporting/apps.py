from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.ui import register_dashboard_card
        from reporting.views import pnl_card, position_items
        from trades.selectors_timeline import register_timeline_source

        register_dashboard_card("pnl", pnl_card)
        register_timeline_source("reporting", position_items)
