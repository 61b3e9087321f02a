from datetime import timedelta

from django import forms
from django.utils import timezone

from .models import ApiToken

LIFETIMES = [("30", "30 days"), ("90", "90 days"), ("180", "180 days"), ("365", "1 year (the longest)")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=60, help_text="What uses it, e.g. “portfolio spreadsheet”.")
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiToken.Scope.READ],
        help_text="Give a program only what it needs. Trade lets it place and cancel orders with your money.",
    )
    lifetime = forms.ChoiceField(choices=LIFETIMES, initial="90", label="Expires after")

    def token_terms(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "scopes": data["scopes"],
            "expires_at": timezone.now() + timedelta(days=int(data["lifetime"])),
        }
