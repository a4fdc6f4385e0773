"""Top-level URL map: the ops UI, the REST API under /api/v1/, admin, health and metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from backoffice import views
from backoffice.streaming import urls as streaming_urls
from compliance import urls as compliance_urls
from reporting import urls as reporting_urls
from settlement import urls as settlement_urls
from trades import urls as trades_urls

api_v1 = [
    *trades_urls.api_urlpatterns,
    *compliance_urls.api_urlpatterns,
    *settlement_urls.api_urlpatterns,
    *reporting_urls.api_urlpatterns,
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("ui/app.css", views.stylesheet, name="stylesheet"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("trades/", include(trades_urls.ui_urlpatterns)),
    path("compliance/", include(compliance_urls.ui_urlpatterns)),
    path("settlement/", include(settlement_urls.ui_urlpatterns)),
    path("reporting/", include(reporting_urls.ui_urlpatterns)),
    path("dead-letters/", include(streaming_urls.ui_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", views.api_docs, name="api-docs"),
]

handler403 = "backoffice.views.permission_denied"
handler404 = "backoffice.views.page_not_found"
handler500 = "backoffice.views.server_error"
