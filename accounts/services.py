from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from .models import User
from .roles import INVESTOR, Role


def user_add_role(*, user: User, role: Role) -> None:
    """Runs in the caller's transaction (sign-up, compliance/access.py, seeding)."""
    user.groups.add(Group.objects.get(name=role.name))
    if role.staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def user_remove_role(*, user: User, role: Role) -> None:
    """Runs in the caller's transaction."""
    user.groups.remove(Group.objects.get(name=role.name))


def user_onboard(*, user: User) -> None:
    """Every new account starts as an investor. Runs in the caller's transaction (the
    sign-up adapter creates the user and its role together)."""
    user_add_role(user=user, role=INVESTOR)


@transaction.atomic(durable=True)
def profile_update(*, user: User, full_name: str) -> User:
    user.full_name = full_name.strip()
    user.full_clean(exclude=["password"])
    user.save(update_fields=["full_name"])
    return user


@transaction.atomic(durable=True)
def unverified_signups_purge() -> int:
    """Delete accounts whose email was never verified within UNVERIFIED_SIGNUP_TTL.
    Staff accounts and accounts with any verified address are never touched.
    Returns how many users were deleted."""
    cutoff = timezone.now() - settings.UNVERIFIED_SIGNUP_TTL
    verified = EmailAddress.objects.filter(verified=True).values("user_id")
    stale = User.objects.filter(
        date_joined__lt=cutoff, is_staff=False, is_superuser=False, last_login__isnull=True
    ).exclude(pk__in=verified)
    _, per_model = stale.delete()
    return per_model.get(User._meta.label, 0)
