"""/api/: the versions of the public API side by side (docs/api.md "Versions"). Every
answer under /api/ is problem+json when it is not a success, also for a path no version
knows and a method an operation does not take."""

from functools import wraps

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, include, path, re_path

from .. import errors
from ..v1 import api as api_v1


def _problem_405(view):
    """ninja answers a method its path does not take with a bare 405; ours is a problem."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(errors.CONTENT_TYPE):
            allowed = response.get("Allow", "")
            return errors.problem(
                request,
                status=405,
                slug="method-not-allowed",
                detail=f"This address takes {allowed or 'other methods'}.",
                headers={"Allow": allowed},
            )
        return response

    return wrapped


def _wrapped(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            # ninja's root page (kept for its name, which locates the API) is nothing to clients.
            pattern.callback = errors.not_found if pattern.name == "api-root" else _problem_405(pattern.callback)
    return patterns


v1_patterns, v1_app, v1_namespace = api_v1.urls
urlpatterns = [
    path("v1/", include((_wrapped(v1_patterns), v1_app), namespace=v1_namespace)),
    # Anything else under /api/ (an unknown path, a malformed id): a 404 problem.
    re_path(r"^.*$", errors.not_found),
]
