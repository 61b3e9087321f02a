import uuid
from typing import cast

from django import forms

from accounts.models import User
from config.money import CURRENCY_CHOICES, parse_major_to_minor
from config.numbers import IdChoiceField, parse_whole_number

MAX_QUANTITY = 2**63 - 1


def parse_quantity(raw) -> int:
    """A number of fractions as typed: whole and at least 1, or a clear message."""
    return parse_whole_number(
        raw,
        label="quantity",
        maximum=MAX_QUANTITY,
        messages={
            "required": "Enter how many fractions you want to buy.",
            "not_integer": "Fractions are whole units: enter a whole number, e.g. 5.",
            "too_large": "That quantity is too large.",
        },
    )


class PurchaseForm(forms.Form):
    quantity = forms.CharField(
        label="Number of fractions",
        max_length=24,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    # Rendered into the page once; a double click or a retried POST reuses it, so the
    # order is placed at most once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    # The review of an investor's first purchase of an asset (views.order_place): ticked to
    # confirm the order and that the asset is illiquid and can lose value.
    risk_acknowledged = forms.BooleanField(required=False)

    @staticmethod
    def new_key() -> str:
        return uuid.uuid4().hex

    def clean_quantity(self) -> int:
        return parse_quantity(self.cleaned_data.get("quantity"))


class WithdrawalForm(forms.Form):
    amount = forms.CharField(label="Amount", max_length=24, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    currency = forms.ChoiceField(label="Currency")
    payout_account = forms.ChoiceField(
        label="Pay to",
        help_text="One of your payout accounts that can be used now.",
        error_messages={
            "required": "Choose the bank account to pay the withdrawal to (add one under Payout accounts).",
            "invalid_choice": "Choose one of your payout accounts that can be used now.",
        },
    )

    def __init__(self, *args, currencies: list[str], accounts=(), **kwargs):
        super().__init__(*args, **kwargs)
        # self.fields holds copies of the fields declared above
        cast(forms.ChoiceField, self.fields["currency"]).choices = [(c, c) for c in currencies]
        # The investor's usable payout accounts (payouts.usable_payout_accounts).
        cast(forms.ChoiceField, self.fields["payout_account"]).choices = [
            (str(a.public_id), f"{a.label + ' · ' if a.label else ''}{a.holder_name} · {a.iban[:4]}…{a.iban[-4:]}")
            for a in accounts
        ]

    def clean_amount(self) -> int:
        return parse_major_to_minor(self.cleaned_data["amount"], field="amount")


class DepositForm(forms.Form):
    """Back office: record cash received for an investor."""

    investor = IdChoiceField(queryset=User.objects.order_by("email"), help_text="Whose money arrived.")
    amount = forms.CharField(label="Amount", max_length=24, help_text="In major units, e.g. 1250.00.")
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="EUR")
    bank_reference = forms.CharField(max_length=100, help_text="The bank's reference of the incoming payment.")

    def clean_amount(self) -> int:
        return parse_major_to_minor(self.cleaned_data["amount"], field="amount")


class DecisionForm(forms.Form):
    """Back office: a reason or a bank reference for a staff decision."""

    text = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
