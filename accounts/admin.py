from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .forms_admin import UserChangeForm, UserCreationForm
from .models import User
from .roles import ISSUER
from .services import issuer_role_grant, issuer_role_revoke


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "role_names"]
    list_filter = ["is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["grant_issuer", "revoke_issuer"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def role_names(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all()))

    @admin.action(description="Grant the issuer role", permissions=["grant_issuer"])
    def grant_issuer(self, request, queryset):
        for user in queryset:
            issuer_role_grant(user=user)
        messages.success(request, f"Issuer role granted to {queryset.count()} user(s).")

    @admin.action(description="Revoke the issuer role", permissions=["grant_issuer"])
    def revoke_issuer(self, request, queryset):
        for user in queryset.filter(groups__name=ISSUER.name):
            issuer_role_revoke(user=user)
        messages.success(request, "Issuer role revoked.")

    def has_grant_issuer_permission(self, request):
        return request.user.has_perm("accounts.grant_issuer_role")
