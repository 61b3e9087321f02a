from django import forms

from . import transport
from .models import EventKind


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=transport.MAX_URL_LENGTH,
        strip=True,
        help_text="An https:// address on the public internet; we POST signed JSON to it.",
    )
    events = forms.MultipleChoiceField(
        choices=EventKind.choices, widget=forms.CheckboxSelectMultiple, label="Events to send"
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        refusal = transport.url_refusal(url)
        if refusal is not None:
            raise forms.ValidationError(refusal)
        return url
