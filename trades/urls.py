"""This app's routes: ``api_urlpatterns`` go under /api/v1/, ``ui_urlpatterns`` under the UI."""

from django.urls import URLPattern, URLResolver, path

from trades import api, views

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("trades/", api.TradeListApi.as_view(), name="api-trades"),
    path("trades/<str:trade_id>/", api.TradeDetailApi.as_view(), name="api-trade-detail"),
]
ui_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.blotter, name="trade-blotter"),
    path("<str:trade_id>/", views.trade_page, name="trade-detail"),
]
