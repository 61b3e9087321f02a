"""Back-office access: nobody raises their own privileges, only superusers change staff
access and passwords, staff sign in with a second factor through one door, and the
system checks keep it so. Tried as admin, compliance officer, bare staff and superuser."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts.checks import check_one_way_in, check_one_way_in_deploy, unguarded_login_routes
from accounts.models import User
from accounts.roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR, ISSUER
from compliance.models import AuditEntry

from .factories import DEFAULT_PASSWORD, UserFactory
from .totp import fresh_totp_code

pytestmark = pytest.mark.django_db

ACTORS = {
    "admin": lambda: UserFactory(is_staff=True, roles=[ADMIN]),
    "compliance_officer": lambda: UserFactory(is_staff=True, roles=[COMPLIANCE_OFFICER]),
    "bare_staff": lambda: UserFactory(is_staff=True, roles=[]),
}
SUPERUSER = lambda: UserFactory(is_staff=True, is_superuser=True, roles=[ADMIN])  # noqa: E731


def _access_url(user):
    return reverse("admin:accounts_user_access", args=[user.pk])


def _access_post(client, user, **fields):
    data = {"reason": "tested", **{k: v for k, v in fields.items() if v is not False}}
    return client.post(_access_url(user), data)


def _state(user):
    user = User.objects.get(pk=user.pk)
    return (
        user.is_active,
        user.is_staff,
        user.is_superuser,
        sorted(user.groups.values_list("name", flat=True)),
        user.user_permissions.count(),
        user.password,
    )


# 1. Privilege escalation ---------------------------------------------------------------


@pytest.mark.parametrize("actor_kind", list(ACTORS))
def test_non_superusers_cannot_make_themselves_superuser_through_the_change_form(client, actor_kind):
    actor = ACTORS[actor_kind]()
    client.force_login(actor)
    before = _state(actor)

    client.post(
        reverse("admin:accounts_user_change", args=[actor.pk]),
        {
            "full_name": "Me",
            "is_superuser": "on",
            "is_staff": "on",
            "is_active": "on",
            "groups": [Group.objects.get(name=ADMIN.name).pk],
            "user_permissions": [1, 2, 3],
        },
    )
    _access_post(client, actor, is_active="on", is_staff="on", is_superuser="on", groups=[ADMIN.name])

    assert _state(actor) == before


@pytest.mark.parametrize("actor_kind", [*ACTORS, "superuser"])
def test_nobody_changes_their_own_access(client, actor_kind):
    actor = SUPERUSER() if actor_kind == "superuser" else ACTORS[actor_kind]()
    client.force_login(actor)
    before = _state(actor)

    response = _access_post(
        client, actor, is_active="on", is_staff="on", is_superuser="on", groups=[ADMIN.name, ISSUER.name]
    )

    assert response.status_code == 403
    assert _state(actor) == before


@pytest.mark.parametrize("actor_kind", list(ACTORS))
def test_non_superusers_cannot_grant_staff_roles_or_superuser_to_others(client, actor_kind):
    actor, target = ACTORS[actor_kind](), UserFactory()
    client.force_login(actor)
    before = _state(target)

    page = client.get(_access_url(target))
    _access_post(client, target, is_active="on", is_staff="on", is_superuser="on", groups=[ADMIN.name])

    assert _state(target) == before
    if page.status_code == 200:  # the admin may (de)activate investors: the rest is shown disabled
        form = page.context["form"]
        assert [name for name, field in form.fields.items() if not field.disabled] == ["is_active", "reason"]
    else:
        assert page.status_code == 403


@pytest.mark.parametrize("actor_kind", list(ACTORS))
def test_non_superusers_cannot_set_a_superusers_password_or_email(client, actor_kind):
    actor, victim = ACTORS[actor_kind](), SUPERUSER()
    client.force_login(actor)
    before_email = victim.email

    response = client.post(
        reverse("admin:auth_user_password_change", args=[victim.pk]),
        {"password1": "Takeover-Pa55word!", "password2": "Takeover-Pa55word!", "reason": "x"},
    )
    client.post(
        reverse("admin:accounts_user_change", args=[victim.pk]),
        {"email": "attacker@example.com", "full_name": "x", "is_active": "on"},
    )
    client.post(_access_url(victim), {"reason": "x"})  # deactivate: is_active unticked

    assert response.status_code == 403
    victim.refresh_from_db()
    assert victim.check_password(DEFAULT_PASSWORD) and victim.email == before_email and victim.is_active
    assert client.login(username=victim.email, password="Takeover-Pa55word!") is False


def test_admin_may_deactivate_an_investor_but_not_a_staff_member(client):
    admin, investor, officer = ACTORS["admin"](), UserFactory(), ACTORS["compliance_officer"]()
    client.force_login(admin)

    ok = client.post(_access_url(investor), {"reason": "fraud report", "groups": [INVESTOR.name]})
    refused = client.post(_access_url(officer), {"reason": "x"})

    assert ok.status_code == 302
    investor.refresh_from_db()
    officer.refresh_from_db()
    assert not investor.is_active and officer.is_active
    assert refused.status_code == 403
    entry = AuditEntry.objects.filter(action="user.access_changed", target_id=str(investor.pk)).get()
    assert entry.actor_id == admin.pk and entry.before["is_active"] and not entry.after["is_active"]
    assert entry.reason == "fraud report"


def test_superuser_grants_a_role_audited_and_mailed_to_the_user_and_other_superusers(
    client, django_capture_on_commit_callbacks
):
    actor, other_superuser, target = SUPERUSER(), SUPERUSER(), UserFactory()
    client.force_login(actor)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = _access_post(
            client, target, is_active="on", is_staff="on", groups=[INVESTOR.name, COMPLIANCE_OFFICER.name]
        )

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.is_staff and not target.is_superuser
    assert set(target.groups.values_list("name", flat=True)) == {INVESTOR.name, COMPLIANCE_OFFICER.name}
    entry = AuditEntry.objects.filter(action="user.access_changed", target_id=str(target.pk)).get()
    assert entry.after["groups"] == [COMPLIANCE_OFFICER.name, INVESTOR.name] and entry.reason == "tested"
    recipients = {m.to[0] for m in mail.outbox}
    assert {target.email, other_superuser.email} <= recipients and actor.email not in recipients


def test_a_staff_role_without_staff_status_is_refused_with_a_message(client):
    client.force_login(SUPERUSER())
    target = UserFactory()

    response = _access_post(client, target, is_active="on", groups=[COMPLIANCE_OFFICER.name])

    assert response.status_code == 200 and "need staff status" in response.content.decode()
    assert not User.objects.get(pk=target.pk).groups.filter(name=COMPLIANCE_OFFICER.name).exists()


def test_superuser_sets_another_staff_members_password_audited_and_mailed(client, django_capture_on_commit_callbacks):
    actor, target = SUPERUSER(), ACTORS["compliance_officer"]()
    client.force_login(actor)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:auth_user_password_change", args=[target.pk]),
            {"password1": "N3w-Staff-Passw0rd", "password2": "N3w-Staff-Passw0rd", "reason": "lost phone"},
        )

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.check_password("N3w-Staff-Passw0rd")
    assert AuditEntry.objects.filter(action="user.password_set", target_id=str(target.pk), actor_id=actor.pk).exists()
    assert target.email in {m.to[0] for m in mail.outbox}


def test_superuser_cannot_set_their_own_password_in_the_back_office(client):
    actor = SUPERUSER()
    client.force_login(actor)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[actor.pk]),
        {"password1": "N3w-Staff-Passw0rd", "password2": "N3w-Staff-Passw0rd", "reason": "x"},
    )

    assert response.status_code == 403
    actor.refresh_from_db()
    assert actor.check_password(DEFAULT_PASSWORD)


def test_nobody_grants_themselves_the_issuer_role(client):
    admin = ACTORS["admin"]()
    client.force_login(admin)

    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "grant_issuer", "_selected_action": [admin.pk], "index": 0},
    )

    assert not admin.groups.filter(name=ISSUER.name).exists()


# 2. One door, with its second factor ---------------------------------------------------


@pytest.fixture
def officer_with_totp():
    officer = ACTORS["compliance_officer"]()
    secret = generate_totp_secret()
    TOTP.activate(officer, secret)
    return officer, secret


SIGNED_IN_PAGES = [
    "admin:index",
    "admin:compliance_kycapplication_changelist",
    "admin:accounts_user_changelist",
    "accounts:profile",
    "marketplace:dashboard",
    "marketplace:portfolio",
]


def _assert_not_signed_in(client):
    assert "_auth_user_id" not in client.session
    for name in SIGNED_IN_PAGES:
        response = client.get(reverse(name), follow=True)
        assert response.redirect_chain, name
        landing = response.redirect_chain[-1][0]
        # the password form, or its second stage (the code) while a login is half done
        assert landing.startswith((reverse("account_login"), reverse("mfa_authenticate"))), (name, landing)
        assert "_auth_user_id" not in client.session, name


def test_back_office_sign_in_page_sends_everyone_to_the_one_login(client):
    response = client.get(reverse("admin:login") + "?next=/backoffice/compliance/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "next=%2Fbackoffice%2Fcompliance%2F" in response["Location"]


def test_a_password_alone_opens_nothing_for_staff_with_totp_through_any_login_url(client, officer_with_totp):
    officer, secret = officer_with_totp

    # The back office's own sign-in takes no password at all.
    client.post(
        reverse("admin:login"), {"username": officer.email, "password": DEFAULT_PASSWORD, "next": "/backoffice/"}
    )
    _assert_not_signed_in(client)

    # The front door asks for the code next, and nothing opens before it.
    response = client.post(
        reverse("account_login") + "?next=/backoffice/", {"login": officer.email, "password": DEFAULT_PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    _assert_not_signed_in(client)

    # With the code, the back office opens.
    response = client.post(
        reverse("account_login") + "?next=/backoffice/", {"login": officer.email, "password": DEFAULT_PASSWORD}
    )
    client.post(reverse("mfa_authenticate"), {"code": fresh_totp_code(secret, used_counters=set())})
    assert client.session["_auth_user_id"] == str(officer.pk)
    assert client.get(reverse("admin:index")).status_code == 200


@override_settings(STAFF_MFA_REQUIRED=True)
def test_a_session_that_skipped_the_second_factor_is_signed_out_of_the_back_office(client, officer_with_totp):
    officer, _ = officer_with_totp
    client.force_login(officer)  # as if some other door had let a password through

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session


@override_settings(STAFF_MFA_REQUIRED=True)
@pytest.mark.django_db(transaction=True)  # allauth announces the new authenticator on commit
def test_staff_without_an_authenticator_set_one_up_before_the_back_office_opens(client):
    officer = ACTORS["compliance_officer"]()
    client.post(reverse("account_login"), {"login": officer.email, "password": DEFAULT_PASSWORD})
    assert client.session["_auth_user_id"] == str(officer.pk)

    for name in ("admin:index", "admin:compliance_kycapplication_changelist"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp"), name

    # Setting it up (allauth asks for the password again first, then a code) opens it.
    page = client.get(reverse("mfa_activate_totp"))
    if page.status_code == 302:
        client.post(page["Location"], {"password": DEFAULT_PASSWORD})
        page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    client.post(reverse("mfa_activate_totp"), {"code": fresh_totp_code(secret, used_counters=set())})
    assert Authenticator.objects.filter(user=officer, type=Authenticator.Type.TOTP).exists()
    assert client.get(reverse("admin:index")).status_code == 200


@override_settings(STAFF_MFA_REQUIRED=True)
def test_investors_are_not_asked_for_an_authenticator(client):
    client.force_login(UserFactory())

    assert client.get(reverse("accounts:profile")).status_code == 200


# 3. One rate limit for every way in ----------------------------------------------------


def test_twelve_wrong_passwords_at_any_login_url_then_the_right_one_signs_nobody_in(client):
    staff = SUPERUSER()
    for attempt in range(6):
        client.post(reverse("admin:login"), {"username": staff.email, "password": f"wrong-{attempt}"})
        client.post(
            reverse("account_login") + "?next=/backoffice/", {"login": staff.email, "password": f"wrong-{attempt}"}
        )

    for url, data in (
        (reverse("admin:login"), {"username": staff.email, "password": DEFAULT_PASSWORD}),
        (reverse("account_login"), {"login": staff.email, "password": DEFAULT_PASSWORD}),
    ):
        response = client.post(url, data)
        assert "_auth_user_id" not in client.session, url
    assert "Too many failed sign-in attempts" in response.content.decode()


# 7. The checks that keep it so ---------------------------------------------------------


def test_the_real_urls_have_no_unguarded_login_and_the_checks_pass():
    assert unguarded_login_routes() == []
    assert check_one_way_in() == []


@override_settings(ROOT_URLCONF="accounts.tests.urls_unguarded")
def test_the_check_fails_when_a_login_url_bypasses_allauth():
    routes = unguarded_login_routes()

    assert "backdoor/login/" in routes and "plain-login/" in routes
    assert [e.id for e in check_one_way_in()] == ["accounts.E001", "accounts.E001"]


@override_settings(ACCOUNT_RATE_LIMITS={"login": "30/m/ip"})
def test_the_check_fails_without_a_failed_login_limit():
    assert "accounts.E002" in [e.id for e in check_one_way_in()]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"STAFF_MFA_REQUIRED": False}, "accounts.E004"),
        ({"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}, "accounts.E005"),
    ],
)
def test_the_deploy_check_fails_without_staff_mfa_or_a_shared_cache(overrides, error):
    with override_settings(**overrides):
        assert error in [e.id for e in check_one_way_in_deploy()]
