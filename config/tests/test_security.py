"""Security baseline: deploy checks, cookies, HSTS, session timeout, CSP, CSRF."""

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _check_deploy_env() -> dict[str, str]:
    """The environment the Makefile's check-deploy target sets, read from the Makefile
    itself so this test and `make check-deploy` cannot drift apart."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ncheck-deploy:", 1)[1].split("manage.py check", 1)[0]
    env = {}
    for name, value in re.findall(r"([A-Z][A-Z0-9_]+)=(\$\$\([^)]*\)|\S+)", recipe):
        env[name] = base64.b64encode(secrets.token_bytes(48)).decode() if value.startswith("$$(") else value
    assert {"DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL"} <= env.keys(), recipe
    return env


def _run_with_production_settings(args, **overrides):
    # The browser plugin sets DJANGO_ALLOW_ASYNC_UNSAFE for this test process; a
    # production process never has it (check --deploy rightly warns about it).
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {**inherited, **_check_deploy_env(), **overrides}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_check_deploy_passes_under_production_settings():
    result = _run_with_production_settings(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_would_catch_a_missing_https_redirect():
    # The same command fails when a baseline setting is weakened, so the test above
    # is not passing by accident
    result = _run_with_production_settings(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], SECURE_SSL_REDIRECT="false"
    )

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout


def test_production_settings_secure_cookies_hsts_and_inactivity_timeout():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_SSL_REDIRECT', "
        "'SESSION_COOKIE_AGE', 'SESSION_SAVE_EVERY_REQUEST', 'X_FRAME_OPTIONS')}))"
    )
    result = _run_with_production_settings(["-c", code])

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_AGE": 1800,
        "SESSION_SAVE_EVERY_REQUEST": True,
        "X_FRAME_OPTIONS": "DENY",
    }


def test_hsts_header_is_sent_over_https(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    response = client.get(reverse("home"), secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.django_db
def test_session_ends_after_thirty_minutes_of_inactivity(client):
    # Given a signed-in user
    UserFactory(email="ivan@example.com")
    client.post(reverse("account_login"), {"login": "ivan@example.com", "password": DEFAULT_PASSWORD})
    session = Session.objects.get(session_key=client.session.session_key)
    # Each request pushes the expiry 30 minutes ahead (sliding window)
    assert abs(session.expire_date - (timezone.now() + timedelta(minutes=30))) < timedelta(seconds=30)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get(reverse("accounts:profile")).status_code == 200
    session.refresh_from_db()
    assert session.expire_date > timezone.now() + timedelta(minutes=29)

    # When 30 minutes pass without a request
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    # Then the next request is anonymous and sent to sign in
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/no-such-page/"])
def test_every_page_sends_a_strict_content_security_policy(client, path):
    response = client.get(path)

    policy = dict(
        (part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in response["Content-Security-Policy"].split(";"))
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_login_post_without_csrf_token_is_refused():
    UserFactory(email="ivan@example.com")
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("account_login"), {"login": "ivan@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signup_post_without_csrf_token_creates_nothing():
    from accounts.models import User

    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": DEFAULT_PASSWORD, "password2": DEFAULT_PASSWORD},
    )

    assert response.status_code == 403
    assert not User.objects.exists()


@pytest.mark.django_db
def test_logout_requires_post_with_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())

    response = client.post(reverse("account_logout"))

    assert response.status_code == 403
    assert "_auth_user_id" in client.session


def test_production_serves_static_files_with_whitenoise():
    code = (
        "from django.conf import settings; import django; django.setup(); "
        "print(settings.MIDDLEWARE.index('whitenoise.middleware.WhiteNoiseMiddleware'))"
    )
    result = _run_with_production_settings(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # right after SecurityMiddleware


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle=|<style[\s>]", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+=", re.I)


@pytest.mark.django_db
def test_pages_carry_no_inline_code_that_the_csp_would_block(client):
    # Given a signed-in user with TOTP and recovery codes, who confirmed their password
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    user = UserFactory(email="ivan@example.com")
    TOTP.activate(user, generate_totp_secret())
    RecoveryCodes.activate(user)
    client.force_login(user)
    client.post(reverse("account_reauthenticate"), {"password": DEFAULT_PASSWORD})
    pages = [
        "/",
        "/me/profile/",
        "/accounts/2fa/",
        "/accounts/2fa/recovery-codes/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/no-such-page/",
    ]
    anonymous = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]

    for path in pages + [None] + anonymous:
        if path is None:
            client.logout()
            continue
        response = client.get(path)
        html = response.content.decode()
        assert response.status_code in (200, 404), path
        # Then no page relies on inline script, inline style or event-handler attributes
        assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html).group(0))
        assert not INLINE_STYLE.search(html), (path, INLINE_STYLE.search(html).group(0))
        assert not INLINE_HANDLER.search(html), (path, INLINE_HANDLER.search(html).group(0))
