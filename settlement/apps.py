from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "settlement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backoffice.ui import register_dashboard_card
        from settlement.views import breaks_card, fails_card, settlement_items
        from trades.selectors_timeline import register_timeline_source

        register_dashboard_card("fails", fails_card)
        register_dashboard_card("breaks", breaks_card)
        # One query per trade page: the obligation and every instruction version netting it.
        register_timeline_source("settlement", settlement_items)
