from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from . import health

admin.site.site_header = "RWA Marketplace back office"
admin.site.site_title = "RWA back office"
admin.site.index_title = "Operations"
# One way in: the back office's sign-in page sends everyone to allauth's, with its
# second-factor stage and its failed-login limit (config/checks.py keeps it so).
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # deliberate wrap of the bound method

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/", include("allauth.urls")),
    path("me/", include("accounts.urls")),
    path("compliance/", include("compliance.urls")),
    path("assets/", include("assets.urls")),
    path("market/", include("marketplace.urls")),
    path("backoffice/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += [
        path("_errors/404", TemplateView.as_view(template_name="404.html")),
        path("_errors/500", TemplateView.as_view(template_name="500.html")),
    ]
