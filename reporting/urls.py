"""This app's routes: ``api_urlpatterns`` go under /api/v1/, ``ui_urlpatterns`` under the UI."""

from django.urls import URLPattern, URLResolver, path

from reporting import api, views

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("reporting/positions/", api.PositionListApi.as_view(), name="api-reporting-positions"),
    path("reporting/pnl/", api.PnlApi.as_view(), name="api-reporting-pnl"),
    path("reporting/pnl/history/", api.PnlHistoryApi.as_view(), name="api-reporting-pnl-history"),
    path("reporting/margin/", api.MarginApi.as_view(), name="api-reporting-margin"),
    path(
        "reporting/margin-calls/",
        api.MarginCallListApi.as_view(),
        name="api-reporting-margin-calls",
    ),
]
ui_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.positions, name="reporting-positions"),
    path("pnl/", views.pnl, name="reporting-pnl"),
    path("margin/", views.margin, name="reporting-margin"),
    path("pnl.csv", views.pnl_csv, name="reporting-pnl-csv"),
]
