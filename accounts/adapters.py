from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction

from .services import user_onboard


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": (
            "Too many failed sign-in attempts. For your security, sign-in is paused for a few "
            "minutes. Try again later or reset your password."
        ),
    }

    def save_user(self, request, user, form, commit=True):
        # The user row and its investor role are created together or not at all.
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                user_onboard(user=user)
        return user
