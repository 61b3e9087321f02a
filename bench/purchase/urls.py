"""The site's URLs plus `/bench/bare`: the cheapest response Django can give through the
same middleware stack, the yardstick the page figures are divided by."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from config.urls import urlpatterns as site_urlpatterns


@require_GET
def bare(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/bare", bare, name="bench_bare"), *site_urlpatterns]
