"""This app's routes: ``api_urlpatterns`` go under /api/v1/, ``ui_urlpatterns`` under the UI."""

from django.urls import URLPattern, URLResolver, path

from compliance import api, views

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
ui_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.exception_queue, name="compliance-exceptions-ui"),
    path("<int:pk>/", views.exception_detail, name="compliance-exception-detail"),
    path("<int:pk>/propose/", views.exception_propose, name="compliance-exception-propose-ui"),
    path("<int:pk>/confirm/", views.exception_confirm, name="compliance-exception-confirm-ui"),
    path("<int:pk>/withdraw/", views.exception_withdraw, name="compliance-exception-withdraw-ui"),
]
