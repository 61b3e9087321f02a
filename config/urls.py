from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import TemplateView

from . import health, metrics

admin.site.site_header = "RWA Marketplace back office"
admin.site.site_title = "RWA back office"
admin.site.index_title = "Operations"
# One way in: the back office's sign-in page sends everyone to allauth's, with its
# second-factor stage and its failed-login limit (config/checks.py keeps it so).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # deliberate wrap of the bound method


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: a manifest storage knows the hashed name only after collectstatic.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # Browsers ask for /favicon.ico where a page names no icon (a PDF, a plain-text error).
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus; a 404 unless METRICS_TOKEN or METRICS_ALLOWED_IPS lets the caller in.
    path("metrics", metrics.metrics_view, name="metrics"),
    # The public REST API (problem+json under all of /api/) and its tokens page (docs/api.md).
    path("api/", include("api.urls.api")),
    path("accounts/api-tokens/", include("api.urls.pages")),
    path("accounts/", include("allauth.urls")),
    path("me/webhooks/", include("webhooks.urls")),
    path("me/", include("accounts.urls")),
    path("compliance/", include("compliance.urls")),
    path("assets/", include("assets.urls")),
    path("market/", include("marketplace.urls")),
    path("chain/", include("chain.urls")),
    path("backoffice/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += [
        path("_errors/404", TemplateView.as_view(template_name="404.html")),
        path("_errors/500", TemplateView.as_view(template_name="500.html")),
    ]
