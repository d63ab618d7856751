from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts import urls as accounts_urls
from alerts import urls as alerts_urls
from analytics import urls as analytics_urls
from catalog import urls as catalog_urls
from entitlements import urls as entitlements_urls
from usage import urls as usage_urls

admin.site.site_header = "Uptake"
admin.site.site_title = "Uptake"
admin.site.index_title = "Catalog and workspaces"

# An API path that matches no route answers JSON like every other API error.
handler404 = "config.api.not_found"
# What Django refuses before a view (a Host outside ALLOWED_HOSTS, …) answers JSON on API paths too.
handler400 = "config.api.bad_request"
# A database outage raised outside a view still gets the 503 page (config/outage.py); other errors Django's 500.
handler500 = "config.outage.server_error"

# One flat list of the apps' API routes (an include per app would add a level that every request resolves
# through), the hot endpoints first (the check, then events): URL resolution tries them in order.
api_v1 = [
    *entitlements_urls.urlpatterns,
    *usage_urls.urlpatterns,
    *accounts_urls.urlpatterns,
    *catalog_urls.urlpatterns,
    *analytics_urls.urlpatterns,
    *alerts_urls.urlpatterns,
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/segment/v1/", include("usage.segment_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script as its own URL (no inline script under the CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Redoc's page starts it with an inline script; the page shows the schema only.
    path(
        "api/redoc/",
        csp_update({"script-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="schema")
        ),
        name="api-redoc",
    ),
    path("alerts/", include("alerts.dashboard_urls", namespace="alerts")),
    path("ingestion/", include("usage.dashboard_urls", namespace="ingestion")),
    path("", include("analytics.dashboard_urls", namespace="dashboard")),
]
