"""Sending a signed-out visitor to the sign-in page from any view, in one place.

`login_required` (and anything else that redirects to LOGIN_URL) answers with a 302 to
the sign-in page whose `next` is the URL just requested. Two requests get that wrong:

- an HTMX request: the browser's XHR follows the 302, and HTMX swaps a whole sign-in page
  into the panel (the purchase form, a polled status) instead of leaving the page;
- a POST (HTMX or a plain form, e.g. a withdrawal): `next` is then a POST-only URL, and
  signing in ends with a GET there: 405.

This middleware rewrites such a redirect. `next` becomes the page the visitor was on: the
HX-Current-URL header of an HTMX request, else the Referer of a POST, each accepted only
as a path on this site (never another origin); without one, the site's root. An HTMX
request gets a 200 with `HX-Redirect`, so HTMX sends the whole browser to the sign-in
page; allauth's login then returns to `next`.
"""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

SAFE_METHODS = ("GET", "HEAD")


def same_origin_path(request: HttpRequest, url: str | None) -> str | None:
    """`url` as a path (with its query) when it points to this site, else None."""
    if not url or len(url) > 2000:
        return None
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.get_host():
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def _is_login_redirect(response: HttpResponse) -> bool:
    if response.status_code not in (301, 302, 303, 307, 308) or not response.has_header("Location"):
        return False
    return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)


def _return_to(request: HttpRequest) -> str | None:
    """Where the visitor should land after signing in, or None to keep the redirect's own
    `next` (a plain GET of a page)."""
    is_htmx = request.headers.get("HX-Request") == "true"
    if is_htmx:
        return same_origin_path(request, request.headers.get("HX-Current-URL")) or "/"
    if request.method not in SAFE_METHODS:
        return same_origin_path(request, request.headers.get("Referer")) or "/"
    return None


class LoginRedirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or user.is_authenticated or not _is_login_redirect(response):
            return response
        return_to = _return_to(request)
        if return_to is None:
            return response
        login_url = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({REDIRECT_FIELD_NAME: return_to})}"
        if request.headers.get("HX-Request") == "true":
            redirect = HttpResponse(status=200)
            redirect["HX-Redirect"] = login_url
            return redirect
        return HttpResponseRedirect(login_url)
