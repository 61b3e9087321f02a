"""The real URLconf plus two views that fail on purpose, to render the error pages."""

from django.core.exceptions import PermissionDenied
from django.urls import path

from config.urls import urlpatterns as real_urlpatterns


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("_test/forbidden", forbidden),
    path("_test/broken", broken),
    *real_urlpatterns,
]
