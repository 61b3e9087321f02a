"""The user admin. Profile fields (the name) are edited here; access (active, staff,
superuser, roles, permissions) and passwords change only through the services in
compliance/access.py, which decide who may do what, audit it and tell the user. This
module renders their forms and never writes those fields itself."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from compliance.access import (
    Access,
    access_change_refusal,
    issuer_role_grant,
    issuer_role_revoke,
    user_access_change,
    user_password_set_by_staff,
)
from config.backoffice import LargeTableAdminMixin, form_errors_from

from .forms_admin import AccessForm, PasswordSetForm, UserChangeForm, UserCreationForm
from .models import User

ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(LargeTableAdminMixin, BaseUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "role_names"]
    list_filter = ["is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    # Email changes go through the user's own verified flow (allauth); a changed address
    # would let whoever set it reset the password, so nobody edits it here.
    readonly_fields = ["email", *ACCESS_FIELDS, "access_link", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal", {"fields": ("full_name",)}),
        ("Access", {"fields": (*ACCESS_FIELDS, "access_link")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["grant_issuer", "revoke_issuer"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # A staff or superuser account is changed by superusers only (its name included).
        if obj is not None and (obj.is_staff or obj.is_superuser) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/access/", self.admin_site.admin_view(self.access_view), name="accounts_user_access"),
        ] + super().get_urls()

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all()))

    @admin.display(description="Change access")
    def access_link(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '<a class="button" href="{}">Change access…</a>', reverse("admin:accounts_user_access", args=[obj.pk])
        )

    def access_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        user = get_object_or_404(User, pk=pk)
        current = Access.of(user)
        editable, refusal = self._editable_access_fields(request, user, current)
        if not editable:
            raise PermissionDenied(refusal)
        form = AccessForm(request.POST or None, initial=AccessForm.initial_for(current), editable=editable)
        if request.method == "POST" and form.is_valid() and form.access(current) == current:
            messages.info(request, "Nothing changed.")
            return redirect("admin:accounts_user_change", user.pk)
        if request.method == "POST" and form.is_valid():
            try:
                user_access_change(
                    actor=request.user, user=user, access=form.access(current), reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                form_errors_from(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"Access of {user.email} saved; the change is in the audit log and the user has been told."
                )
                return redirect("admin:accounts_user_change", user.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Access of {user.email}",
            "form": form,
            "opts": self.model._meta,
            "original": user,
            "submit_label": "Save access",
            "intro": f"Changes here are recorded in the audit log with your reason and mailed to {user.email} "
            "and to every other superuser. Greyed-out fields are ones you may not change.",
        }
        return TemplateResponse(request, "admin/service_form.html", context)

    @staticmethod
    def _editable_access_fields(request: HttpRequest, user: User, current: Access) -> tuple[set[str], str]:
        """The fields whose change the service would accept from this actor, and why the
        others are refused (asked of the service's own rule, not restated here)."""
        probes = {
            "is_active": Access(
                not current.is_active, current.is_staff, current.is_superuser, current.groups, current.permissions
            ),
            "is_staff": Access(
                current.is_active, not current.is_staff, current.is_superuser, current.groups, current.permissions
            ),
        }
        refusals = {
            name: access_change_refusal(actor=request.user, user=user, before=current, after=after)
            for name, after in probes.items()
        }
        editable = {name for name, refusal in refusals.items() if refusal is None}
        if "is_staff" in editable:  # the same rule covers superuser, roles and permissions
            editable |= {"is_superuser", "groups", "permissions"}
        return editable, refusals["is_active"] or refusals["is_staff"] or ""

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        user = self.get_object(request, id)
        if user is None:
            raise Http404("No such account.")
        if request.user.pk == user.pk or not request.user.is_superuser:
            raise PermissionDenied(
                "Only a superuser can set another account's password; change your own from your profile."
            )
        form = PasswordSetForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                user_password_set_by_staff(
                    actor=request.user,
                    user=user,
                    password=form.cleaned_data["password1"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"A new password was set for {user.email}; they have been told.")
                return redirect("admin:accounts_user_change", user.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Set a password for {user.email}",
            "form": form,
            "opts": self.model._meta,
            "original": user,
            "submit_label": "Set password",
            "intro": "Prefer sending a password-reset link. Setting a password is for superusers only, is "
            "recorded in the audit log with your reason, and the user is told.",
        }
        return TemplateResponse(request, "admin/service_form.html", context)

    @admin.action(description="Grant the issuer role", permissions=["grant_issuer"])
    def grant_issuer(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._issuer_action(request, queryset, issuer_role_grant, "granted to")

    @admin.action(description="Revoke the issuer role", permissions=["grant_issuer"])
    def revoke_issuer(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._issuer_action(request, queryset, issuer_role_revoke, "revoked from")

    @staticmethod
    def _issuer_action(request: HttpRequest, queryset: QuerySet[User], service: Callable[..., bool], verb: str) -> None:
        changed = 0
        for user in queryset:
            try:
                changed += service(actor=request.user, user=user)
            except PermissionDenied as exc:
                messages.error(request, f"{user.email}: {exc}")
        messages.success(request, f"Issuer role {verb} {changed} user(s).")

    def has_grant_issuer_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.grant_issuer_role")
