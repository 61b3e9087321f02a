import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.roles import ISSUER
from accounts.services import user_add_role, user_remove_role
from accounts.tests.factories import UserFactory
from compliance.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_failed_login_is_recorded(client):
    UserFactory(email="victim@example.com")

    client.post(reverse("account_login"), {"login": "victim@example.com", "password": "wrong-password"})

    entry = AuditEntry.objects.filter(action="auth.login_failed").latest("seq")
    assert entry.after["login"] == "victim@example.com" and entry.actor_id is None
    assert "wrong-password" not in str(entry.after)


def test_role_changes_are_recorded():
    user = UserFactory()

    user_add_role(user=user, role=ISSUER)
    user_remove_role(user=user, role=ISSUER)

    entries = AuditEntry.objects.filter(
        target_type="accounts.User", target_id=str(user.pk), action__startswith="role."
    ).order_by("seq")
    assert [(e.action, e.after["items"]) for e in entries][-2:] == [
        ("role.added", ["issuer"]),
        ("role.removed", ["issuer"]),
    ]


def test_permission_changes_and_clear_are_recorded():
    user = UserFactory()
    perm = Permission.objects.get(codename="view_auditentry")

    user.user_permissions.add(perm)
    user.user_permissions.clear()

    entries = AuditEntry.objects.filter(target_id=str(user.pk), action__startswith="user_permission.").order_by("seq")
    assert [(e.action, e.after["items"]) for e in entries] == [
        ("user_permission.added", ["compliance.view_auditentry"]),
        ("user_permission.cleared", ["compliance.view_auditentry"]),
    ]


def test_reverse_side_group_changes_are_recorded():
    from django.contrib.auth.models import Group

    user = UserFactory(roles=[])
    Group.objects.get(name="issuer").user_set.add(user)

    assert AuditEntry.objects.filter(action="role.added", target_id=str(user.pk)).exists()


def test_admin_actions_are_recorded(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    target = UserFactory()
    client.force_login(admin_user)

    client.post(reverse("admin:accounts_user_changelist"), {"action": "grant_issuer", "_selected_action": [target.pk]})
    client.post(
        reverse("admin:accounts_user_change", args=[target.pk]),
        {
            "email": target.email,
            "full_name": "Renamed",
            "is_active": "on",
            "groups": [],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    entry = AuditEntry.objects.filter(action="admin.changed", actor_id=admin_user.pk).latest("seq")
    assert entry.after["object_id"] == str(target.pk)
