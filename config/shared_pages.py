"""Whole pages rendered once for every anonymous visitor.

A public page that an anonymous visitor sees (the catalogue, an offering) is the same for
all of them but for one value: the CSRF token in the frame (HTMX's header, a form's hidden
field), which is each visitor's own. Such a page is rendered with a marker in the token's
place, kept in the shared cache by its caller (config/fragment_cache.py, under the versions
of what it shows), and each response gets the visitor's token put in (`personalised`), so
Django's CSRF middleware sets that visitor's cookie exactly as for a rendered page.

Only when sharing is safe (`shareable`): nobody signed in (their pages show their name,
cash and forms) and no flash message waiting for this visitor (it would be part of the
page; checking does not consume it)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

TOKEN_MARKER = "rwa-shared-page-csrf-token-marker"


def shareable(request: HttpRequest) -> bool:
    return not request.user.is_authenticated and not len(messages.get_messages(request))


def render_shared(request: HttpRequest, template: str, context: dict) -> str:
    """The page as every anonymous visitor sees it, with the marker for the token."""
    return render_to_string(template, {**context, "csrf_token": TOKEN_MARKER}, request=request)


def personalised(request: HttpRequest, html: str, *, status: int = 200) -> HttpResponse:
    """A shared page with this visitor's CSRF token (which also sets their cookie)."""
    return HttpResponse(html.replace(TOKEN_MARKER, get_token(request)), status=status)
