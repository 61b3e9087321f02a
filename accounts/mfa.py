"""Staff must sign in with a second factor. allauth's login flow asks for the TOTP code of
anyone who has one; this module makes having one compulsory for staff and refuses a
back-office request from any session that did not pass that stage (defence in depth:
whatever way a session was opened, the back office sees how it was authenticated).

STAFF_MFA_REQUIRED turns this off; only the embedded demo may do so (production settings
pin it on and `check --deploy` fails without it, see config/checks.py)."""

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def user_has_second_factor(user) -> bool:
    return Authenticator.objects.filter(user=user, type__in=SECOND_FACTORS).exists()


def session_passed_second_factor(request: HttpRequest) -> bool:
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, request.user))


def record_second_factor_on_activation(sender, request, user, authenticator, **kwargs) -> None:
    """Whoever just activated an authenticator proved they hold it with a code: the
    session counts as passed, so a staff member sent to set one up can go on."""
    if authenticator.type not in SECOND_FACTORS or request is None:
        return
    if getattr(request, "user", None) is not None and request.user.pk == user.pk:
        record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type, activated=True)


class StaffMfaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        refusal = self.refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest):
        if not settings.STAFF_MFA_REQUIRED:
            return None
        user = request.user
        if not (user.is_authenticated and (user.is_staff or user.is_superuser)):
            return None
        back_office = reverse("admin:index")
        if not request.path.startswith(back_office) or request.path == reverse("admin:logout"):
            return None
        if not user_has_second_factor(user):
            messages.warning(
                request,
                "Staff accounts need an authenticator app. Set it up now; the back office opens once it is active.",
            )
            return redirect(reverse("mfa_activate_totp"))
        if not session_passed_second_factor(request):
            logout(request)
            messages.warning(request, "Sign in again with your authenticator code to open the back office.")
            return redirect(f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}")
        return None
