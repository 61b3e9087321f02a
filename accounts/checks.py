"""System checks that keep every way in behind the same door: a sign-in URL that skips
allauth's flow would skip its second-factor stage and its failed-login limit, which is
how /backoffice/login/ once let a password alone into the back office."""

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.views import LoginView
from django.core.checks import Error, Tags, register
from django.urls import URLPattern, URLResolver, get_resolver

# Every view wrapped by secure_admin_login runs this one code object.
_GUARDED_CODE = secure_admin_login(lambda request: None).__code__
_SHARED_CACHE_BACKENDS_REFUSED = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _patterns(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _is_password_login(callback) -> bool:
    view_class = getattr(callback, "view_class", None)
    if isinstance(view_class, type) and issubclass(view_class, LoginView):
        return True
    owner = getattr(callback, "__self__", None)
    return isinstance(owner, AdminSite) and getattr(callback, "__name__", "") == "login"


def unguarded_login_routes(urlconf=None) -> list[str]:
    """Routes that take a password without going through allauth's login flow."""
    return [
        route
        for route, callback in _patterns(get_resolver(urlconf))
        if _is_password_login(callback) and getattr(callback, "__code__", None) is not _GUARDED_CODE
    ]


@register(Tags.security)
def check_one_way_in(app_configs=None, **kwargs):
    errors = [
        Error(
            f"/{route} signs users in without allauth's flow (no second-factor stage, no failed-login limit).",
            hint="Wrap it with allauth.account.decorators.secure_admin_login or remove it.",
            id="accounts.E001",
        )
        for route in unguarded_login_routes()
    ]
    if not settings.ACCOUNT_RATE_LIMITS or not settings.ACCOUNT_RATE_LIMITS.get("login_failed"):
        errors.append(
            Error(
                "ACCOUNT_RATE_LIMITS has no 'login_failed' limit: passwords could be guessed without end.",
                id="accounts.E002",
            )
        )
    if "allauth.mfa" not in settings.INSTALLED_APPS or "accounts.mfa.StaffMfaMiddleware" not in settings.MIDDLEWARE:
        errors.append(
            Error(
                "The second-factor stage (allauth.mfa) or the staff rule (accounts.mfa.StaffMfaMiddleware) "
                "is not installed.",
                id="accounts.E003",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def check_one_way_in_deploy(app_configs=None, **kwargs):
    errors = []
    if not settings.STAFF_MFA_REQUIRED:
        errors.append(
            Error(
                "STAFF_MFA_REQUIRED is off: staff could open the back office with a password alone.", id="accounts.E004"
            )
        )
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in _SHARED_CACHE_BACKENDS_REFUSED:
        errors.append(
            Error(
                f"The default cache ({backend}) is not shared between processes, so each process "
                "keeps its own failed-login counters.",
                hint="Set CACHE_URL to Redis.",
                id="accounts.E005",
            )
        )
    return errors
