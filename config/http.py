"""Request types for annotations."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware (in every settings module) leaves it: with
    `request.htmx`. For type annotations only; views still receive Django's HttpRequest."""

    htmx: HtmxDetails
