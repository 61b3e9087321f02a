from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from .forms import ProfileForm
from .http import AuthenticatedHttpRequest
from .roles import user_roles
from .services import profile_update


@login_required
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        try:
            profile_update(user=user, full_name=form.cleaned_data["full_name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Your profile was saved.")
            return redirect("accounts:profile")
    mfa_types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    return render(
        request,
        "accounts/profile.html",
        {
            "form": form,
            "roles": user_roles(user),
            "totp_enabled": Authenticator.Type.TOTP in mfa_types,
        },
    )
