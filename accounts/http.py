"""Request types for annotations."""

from django.http import HttpRequest

from .models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind login_required: its user is signed in, never
    AnonymousUser. For type annotations only; views still receive Django's HttpRequest."""

    user: User
