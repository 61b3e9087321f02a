"""Who may change whose access, and the one way it changes.

Every change to an account's access goes through a service here: it checks who asks,
applies the change, writes the audit log in the same transaction and mails the affected
user after commit. The back office (accounts/admin.py) only renders forms for them.

The rules:
- Nobody changes their own access (active, staff, superuser, roles, permissions), nor
  their own password or email through the back office: they use their own profile,
  which asks for the current password.
- Only a superuser grants or removes superuser, staff status, roles (groups) or
  individual permissions, and only a superuser sets another account's password.
- A member of staff with `accounts.change_user` may deactivate or reactivate an
  investor or issuer account, never a staff or superuser account.
- The issuer role (no back-office rights) is granted by staff with
  `accounts.grant_issuer_role`, never to themselves.

Four eyes: role assignment does not wait for a second administrator. Superusers are few
(break-glass accounts); each change is in the tamper-evident audit log and is mailed to
the affected user and to every other active superuser, who can undo it. docs/compliance.md
says the same."""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import User
from accounts.notifications import notify
from accounts.roles import ISSUER, ROLES_BY_NAME
from accounts.services import user_add_role, user_remove_role

from .audit import audit_record

CHANGE_USER_PERMISSION = "accounts.change_user"
GRANT_ISSUER_PERMISSION = "accounts.grant_issuer_role"


@dataclass(frozen=True)
class Access:
    is_active: bool
    is_staff: bool
    is_superuser: bool
    groups: frozenset[str]
    permissions: frozenset[str]

    @classmethod
    def of(cls, user: User) -> "Access":
        return cls(
            is_active=user.is_active,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            groups=frozenset(user.groups.values_list("name", flat=True)),
            permissions=frozenset(
                f"{app}.{codename}"
                for app, codename in user.user_permissions.values_list("content_type__app_label", "codename")
            ),
        )

    def as_dict(self) -> dict:
        return {
            "is_active": self.is_active,
            "is_staff": self.is_staff,
            "is_superuser": self.is_superuser,
            "groups": sorted(self.groups),
            "permissions": sorted(self.permissions),
        }


def _is_privileged(user: User) -> bool:
    return user.is_staff or user.is_superuser


def _actor_is_superuser(actor) -> bool:
    return bool(actor is not None and actor.is_authenticated and actor.is_active and actor.is_superuser)


def access_change_refusal(*, actor, user: User, before: Access, after: Access) -> str | None:
    """Why `actor` may not change `user` from `before` to `after`; None when allowed.
    The back office asks this to decide which fields to offer; the services enforce it."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        return "Sign in to change access."
    if before == after:
        return None
    if actor.pk == user.pk:
        return "Nobody can change their own access. Ask another administrator."
    if _actor_is_superuser(actor):
        return None
    only_active_changed = (before.is_staff, before.is_superuser, before.groups, before.permissions) == (
        after.is_staff,
        after.is_superuser,
        after.groups,
        after.permissions,
    )
    if only_active_changed and actor.has_perm(CHANGE_USER_PERMISSION):
        if _is_privileged(user):
            return "Only a superuser can deactivate or reactivate a staff account."
        return None
    return "Only a superuser can change staff status, superuser status, roles or permissions."


def _permissions_by_label(labels: frozenset[str]) -> list[Permission]:
    found = []
    for label in sorted(labels):
        app_label, _, codename = label.partition(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is None:
            raise ValidationError({"permissions": f"Unknown permission {label!r}."})
        found.append(perm)
    return found


def _tell(*, actor, user: User, subject: str, body: str) -> None:
    """The affected user and every other active superuser hear of an access change."""
    notify(user=user, subject=subject, body=body)
    watchers = User.objects.filter(is_superuser=True, is_active=True).exclude(pk__in=[user.pk, actor.pk])
    for superuser in watchers:
        notify(user=superuser, subject=f"Access changed for {user.email}", body=f"{body}\n\nChanged by {actor.email}.")


@transaction.atomic(durable=True)
def user_access_change(*, actor, user: User, access: Access, reason: str) -> User:
    user = User.objects.select_for_update().get(pk=user.pk)
    before = Access.of(user)
    refusal = access_change_refusal(actor=actor, user=user, before=before, after=access)
    if refusal:
        raise PermissionDenied(refusal)
    if before == access:
        return user
    unknown = access.groups - set(ROLES_BY_NAME)
    if unknown:
        raise ValidationError({"groups": f"Unknown role(s): {', '.join(sorted(unknown))}."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the access changes; the audit log keeps it."})
    staff_roles = sorted(name for name in access.groups if ROLES_BY_NAME[name].staff)
    if staff_roles and not access.is_staff:
        raise ValidationError({"is_staff": f"The role(s) {', '.join(staff_roles)} need staff status."})

    user.is_active, user.is_staff, user.is_superuser = access.is_active, access.is_staff, access.is_superuser
    user.save(update_fields=["is_active", "is_staff", "is_superuser"])
    user.groups.set(Group.objects.filter(name__in=access.groups))
    user.user_permissions.set(_permissions_by_label(access.permissions))
    audit_record(
        actor=actor,
        action="user.access_changed",
        target=user,
        before=before.as_dict(),
        after=access.as_dict(),
        reason=reason.strip(),
    )
    changes = [
        f"- {name}: {before.as_dict()[name]} → {access.as_dict()[name]}"
        for name in access.as_dict()
        if before.as_dict()[name] != access.as_dict()[name]
    ]
    _tell(
        actor=actor,
        user=user,
        subject="Your access was changed",
        body="The access of your account was changed:\n"
        + "\n".join(changes)
        + f"\n\nReason: {reason.strip()}\nIf you did not expect this, contact support at once.",
    )
    return user


@transaction.atomic(durable=True)
def user_password_set_by_staff(*, actor, user: User, password: str, reason: str) -> User:
    """A superuser sets another account's password (for example after identity checks
    on the phone). Everyone else sends the user a reset link instead."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if actor.pk == user.pk:
        raise PermissionDenied("Change your own password from your profile; it asks for the current one.")
    if not _actor_is_superuser(actor):
        raise PermissionDenied("Only a superuser can set another account's password.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why the password is set; the audit log keeps it."})
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(actor=actor, action="user.password_set", target=user, reason=reason.strip())
    _tell(
        actor=actor,
        user=user,
        subject="Your password was changed by an administrator",
        body=f"An administrator set a new password for your account.\n\nReason: {reason.strip()}\n"
        "If you did not ask for this, contact support at once.",
    )
    return user


def _issuer_role_change(*, actor, user: User, grant: bool) -> bool:
    if not actor.has_perm(GRANT_ISSUER_PERMISSION):
        raise PermissionDenied("You may not grant or revoke the issuer role.")
    if actor.pk == user.pk:
        raise PermissionDenied("Nobody can change their own roles. Ask another administrator.")
    user = User.objects.select_for_update().get(pk=user.pk)
    has_role = user.groups.filter(name=ISSUER.name).exists()
    if has_role == grant:
        return False
    (user_add_role if grant else user_remove_role)(user=user, role=ISSUER)
    audit_record(
        actor=actor,
        action="user.issuer_granted" if grant else "user.issuer_revoked",
        target=user,
        before={"groups": [ISSUER.name] if has_role else []},
        after={"groups": [ISSUER.name] if grant else []},
    )
    notify(
        user=user,
        subject="You can now register assets" if grant else "Your issuer role was removed",
        body="You have been given the issuer role: you can register assets and submit them for review."
        if grant
        else "Your issuer role was removed; assets you registered stay as they are.",
    )
    return True


@transaction.atomic(durable=True)
def issuer_role_grant(*, actor, user: User) -> bool:
    """True when the role was granted now, False when the user had it already."""
    return _issuer_role_change(actor=actor, user=user, grant=True)


@transaction.atomic(durable=True)
def issuer_role_revoke(*, actor, user: User) -> bool:
    return _issuer_role_change(actor=actor, user=user, grant=False)
