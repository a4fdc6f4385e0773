"""Top-level URL map: the ops UI, the REST API under /api/v1/, admin, health and metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backoffice import views
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
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("trades/", include(trades_urls.ui_urlpatterns)),
    path("compliance/", include(compliance_urls.ui_urlpatterns)),
    path("settlement/", include(settlement_urls.ui_urlpatterns)),
    path("reporting/", include(reporting_urls.ui_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
