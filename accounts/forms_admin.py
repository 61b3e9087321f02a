from typing import cast

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import Permission

from .models import User
from .roles import ROLES


class UserCreationForm(auth_forms.UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeForm(auth_forms.UserChangeForm):
    """Only the name is edited on the change page; access and password have their own
    pages (accounts/admin.py)."""

    class Meta:
        model = User
        fields = ("full_name",)


def _permission_choices() -> list[tuple[str, str]]:
    perms = Permission.objects.select_related("content_type").order_by("content_type__app_label", "codename")
    return [(f"{p.content_type.app_label}.{p.codename}", f"{p.content_type.app_label} | {p.name}") for p in perms]


class AccessForm(forms.Form):
    """Fields the actor may not change are shown disabled (Django then ignores what is
    posted for them and keeps the initial value)."""

    is_active = forms.BooleanField(required=False, label="Active (may sign in)")
    is_staff = forms.BooleanField(required=False, label="Staff (may open the back office)")
    is_superuser = forms.BooleanField(required=False, label="Superuser (every permission)")
    groups = forms.MultipleChoiceField(
        required=False,
        label="Roles",
        widget=forms.CheckboxSelectMultiple,
        choices=[(role.name, role.label) for role in ROLES],
    )
    permissions = forms.MultipleChoiceField(
        required=False, label="Individual permissions", widget=forms.SelectMultiple(attrs={"size": 12})
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the audit log and sent to the user.",
    )

    def __init__(self, *args, editable: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        # self.fields holds copies of the fields declared above
        cast(forms.MultipleChoiceField, self.fields["permissions"]).choices = _permission_choices()
        for name in ("is_active", "is_staff", "is_superuser", "groups", "permissions"):
            if name not in editable:
                self.fields[name].disabled = True

    @staticmethod
    def initial_for(access) -> dict:
        return {
            "is_active": access.is_active,
            "is_staff": access.is_staff,
            "is_superuser": access.is_superuser,
            "groups": sorted(access.groups),
            "permissions": sorted(access.permissions),
        }

    def access(self, current):
        data = self.cleaned_data
        return type(current)(
            is_active=data["is_active"],
            is_staff=data["is_staff"],
            is_superuser=data["is_superuser"],
            groups=frozenset(data["groups"]),
            permissions=frozenset(data["permissions"]),
        )


class PasswordSetForm(forms.Form):
    password1 = forms.CharField(
        label="New password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="New password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the audit log and sent to the user.",
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data
