"""This app's routes: ``api_urlpatterns`` go under /api/v1/, ``ui_urlpatterns`` under the UI."""

from django.urls import URLPattern, URLResolver, path

from compliance import api

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("exceptions/", api.ExceptionListApi.as_view(), name="compliance-exceptions"),
    path(
        "exceptions/<int:exception_id>/",
        api.ExceptionDetailApi.as_view(),
        name="compliance-exception",
    ),
    path(
        "exceptions/<int:exception_id>/propose/",
        api.ExceptionProposeApi.as_view(),
        name="compliance-exception-propose",
    ),
    path(
        "exceptions/<int:exception_id>/confirm/",
        api.ExceptionConfirmApi.as_view(),
        name="compliance-exception-confirm",
    ),
    path(
        "exceptions/<int:exception_id>/withdraw/",
        api.ExceptionWithdrawApi.as_view(),
        name="compliance-exception-withdraw",
    ),
]
ui_urlpatterns: list[URLPattern | URLResolver] = []
