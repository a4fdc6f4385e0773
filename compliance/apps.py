from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.ui import register_dashboard_card
        from compliance.views import compliance_timeline, open_exceptions_card
        from trades.selectors_timeline import register_timeline_source

        register_dashboard_card("exceptions", open_exceptions_card)
        register_timeline_source("compliance", compliance_timeline)
