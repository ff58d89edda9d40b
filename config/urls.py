from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from channels_inbound.unsubscribe import unsubscribe
from engagement.console.attachments import attachment_download
from engagement.console.csat_views import csat_survey


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe; also the bare-view baseline of the benchmarks."""
    return HttpResponse("ok", content_type="text/plain")


# Redoc draws with styled-components and React style attributes, neither of which carries a nonce: its
# page alone allows inline styles (a nonce in style-src would make browsers ignore 'unsafe-inline').
# Scripts keep the nonce.
REDOC_CSP: dict[str, Any] = {
    **settings.SECURE_CSP,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "worker-src": [CSP.SELF, "blob:"],
}

handler404 = "engagement.api.exceptions.api_not_found"
handler400 = "engagement.api.exceptions.api_bad_request"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("webhooks/", include("channels_inbound.urls")),
    path("webchat/", include("channels_inbound.webchat.urls")),
    path("unsubscribe/<str:token>/", unsubscribe, name="email-unsubscribe"),
    path("csat/<str:token>/", csat_survey, name="csat-survey"),
    path("attachments/<int:attachment_id>/", attachment_download, name="attachment-download"),
    path("api/v1/", include("engagement.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "api/redoc/",
        csp_override(REDOC_CSP)(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    path("settings/unprocessed-events/", include("channels_inbound.console_urls")),
    path("", include("engagement.console.urls")),
]
