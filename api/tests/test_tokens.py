"""Personal access tokens: created on the profile's "API tokens" page with the secret
shown once, stored as a prefix and a SHA-256 only, listed without the secret, revoked;
revoked, expired and inactive-user tokens answer 401; last_used_at at most once a
minute; the page's sign-in rule, CSRF and rate limit."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import UserFactory
from api.models import ApiToken
from api.services import api_token_create, api_token_revoke, api_token_touch
from compliance.models import AuditEntry

from .helpers import ApiClient, assert_problem, make_token

pytestmark = pytest.mark.django_db

PAGE = "/accounts/api-tokens/"
ME = "/api/v1/me/portfolio"
SECRET = re.compile(r"rwa_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}")


def create_on_page(client, **overrides):
    data = {"name": "spreadsheet", "scopes": ["read"], "lifetime": "90", **overrides}
    return client.post(PAGE, data)


def test_created_once_hashed_listed_without_the_secret(alice, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = create_on_page(client)
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    secrets_shown = SECRET.findall(response.content.decode())
    assert len(set(secrets_shown)) == 1
    secret = secrets_shown[0]
    token = ApiToken.objects.get(user=alice)
    assert token.prefix == secret.split("_")[1] and token.scopes == "read"
    assert token.secret_sha256 == hashlib.sha256(secret.split("_", 2)[2].encode()).hexdigest()
    # Nothing stored or listed carries the secret.
    stored = " ".join(str(getattr(token, f.attname)) for f in ApiToken._meta.fields)
    assert secret.split("_", 2)[2] not in stored
    listing = client.get(PAGE).content.decode()
    assert f"rwa_{token.prefix}_…" in listing and not SECRET.search(listing)
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    # It works, the owner was mailed and the creation audited.
    assert ApiClient(secret).get(ME).status_code == 200
    assert len(mail.outbox) == 1 and token.prefix in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="api_token.created", target_id=str(token.pk)).exists()


def test_revoked_token_is_401_and_the_page_revokes_only_ones_own(alice, bob):
    client = Client()
    client.force_login(alice)
    token, secret = make_token(alice)
    api = ApiClient(secret)
    assert api.get(ME).status_code == 200
    other, _ = make_token(bob)
    assert client.post(f"{PAGE}{other.pk}/revoke/").status_code == 404
    assert client.post(f"{PAGE}{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    other.refresh_from_db()
    assert token.revoked_at is not None and other.revoked_at is None
    body = assert_problem(api.get(ME), 401, "unauthorized")
    assert "revoked" in body["detail"]
    assert 'error="invalid_token"' in api.get(ME)["WWW-Authenticate"]
    assert "Revoked" in client.get(PAGE).content.decode()


def test_revoke_is_idempotent_and_owner_only(alice, bob):
    token, _ = make_token(alice)
    first = api_token_revoke(token=token, actor=alice).revoked_at
    assert api_token_revoke(token=token, actor=alice).revoked_at == first
    with pytest.raises(ValidationError):
        api_token_revoke(token=make_token(alice)[0], actor=bob)


def test_expired_token_is_401(alice):
    token, secret = make_token(alice)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_problem(ApiClient(secret).get(ME), 401, "unauthorized")


def test_inactive_user_token_is_401(alice):
    _token, secret = make_token(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert_problem(ApiClient(secret).get(ME), 401)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # right prefix, wrong secret
        lambda s: "rwa_" + "Z" * 8 + s[12:],  # unknown prefix
        lambda s: s.upper(),
        lambda s: s + "x",
        lambda s: s[:20],
        lambda s: "",
    ],
)
def test_a_wrong_token_is_401(alice, mangle):
    _token, secret = make_token(alice)
    assert_problem(ApiClient(mangle(secret)).get(ME), 401, "unauthorized")


def test_lifetime_at_most_a_year_and_scopes_required(alice):
    now = timezone.now()
    with pytest.raises(ValidationError) as exc:
        api_token_create(user=alice, name="x", scopes=["read"], expires_at=now + timedelta(days=366))
    assert "expires_at" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        api_token_create(user=alice, name="x", scopes=["admin"], expires_at=now + timedelta(days=1))
    assert "scopes" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        api_token_create(user=alice, name=" ", scopes=["read"], expires_at=now - timedelta(days=1))
    assert set(exc.value.message_dict) == {"name", "expires_at"}
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"scopes": []},
        {"scopes": ["admin"]},
        {"lifetime": "400"},
        {"lifetime": "١٢"},
        {"name": ""},
        {"name": "x" * 10_000},
        {"name": "a\x00b"},
    ],
)
def test_the_form_refuses_bad_values_with_a_message(alice, overrides):
    client = Client()
    client.force_login(alice)
    response = create_on_page(client, **overrides)
    assert response.status_code == 422
    assert 'class="errorlist"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_last_used_is_written_at_most_once_a_minute(alice):
    token, secret = make_token(alice)
    api = ApiClient(secret)
    api.get(ME)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    api.get(ME)
    token.refresh_from_db()
    assert token.last_used_at == first
    later = first + timedelta(seconds=61)
    api_token_touch(token=token, now=later)
    token.refresh_from_db()
    assert token.last_used_at == later


def test_the_page_needs_a_sign_in_like_the_profile(alice):
    client = Client()
    assert client.get(PAGE).status_code == 302
    assert create_on_page(client).status_code == 302
    assert not ApiToken.objects.exists()
    client.force_login(alice)
    profile = client.get("/me/profile/").content.decode()
    assert 'href="/accounts/api-tokens/"' in profile


def test_the_page_needs_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert create_on_page(client).status_code == 403
    token, _ = make_token(alice)
    assert client.post(f"{PAGE}{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None and ApiToken.objects.count() == 1


def test_creating_tokens_is_rate_limited(alice, monkeypatch):
    monkeypatch.setattr("api.views.CHANGE_RATE", (2, 3600))
    client = Client()
    client.force_login(alice)
    assert [create_on_page(client).status_code for _ in range(3)] == [201, 201, 429]
    assert ApiToken.objects.count() == 2


def test_prefixes_are_unique_and_the_token_names_its_scopes():
    user = UserFactory()
    tokens = [make_token(user, scopes=("trade",))[0] for _ in range(20)]
    assert len({t.prefix for t in tokens}) == 20
    assert all(t.scope_list == ["trade"] for t in tokens)
