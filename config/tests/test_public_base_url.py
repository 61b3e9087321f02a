"""Absolute links come from one setting, PUBLIC_BASE_URL, which the embedded runner sets
from the port it serves on (issue 15, defect 2: they used to say 8000 whatever RWA_PORT)."""

import importlib.util
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse

from accounts.notifications import notify
from accounts.tests.factories import UserFactory
from assets import metadata
from assets.tests.factories import AssetFactory

ROOT = Path(__file__).resolve().parents[2]


def _runner():
    spec = importlib.util.spec_from_file_location("run_embedded_under_test", ROOT / "scripts" / "run_embedded.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, "http://127.0.0.1:8000"),
        ({"RWA_PORT": "8765"}, "http://127.0.0.1:8765"),
        ({"RWA_HOST": "localhost", "RWA_PORT": "9001"}, "http://localhost:9001"),
        ({"RWA_HOST": "0.0.0.0", "RWA_PORT": "9002"}, "http://127.0.0.1:9002"),
        ({"RWA_HOST": "::1", "RWA_PORT": "9003"}, "http://[::1]:9003"),
        ({"RWA_PORT": "9004", "PUBLIC_BASE_URL": "https://demo.example"}, "https://demo.example"),
    ],
)
def test_the_embedded_runner_derives_the_base_url_from_its_host_and_port(environ, expected):
    assert _runner().public_base_url(environ) == expected


def test_the_runner_sets_the_setting_before_anything_is_seeded():
    source = (ROOT / "scripts" / "run_embedded.py").read_text()
    main = source[source.index("def main()") :]
    assert main.index('os.environ["PUBLIC_BASE_URL"] = public_base_url(os.environ)') < main.index('manage("migrate"')


def test_nothing_outside_the_setting_names_port_8000():
    for folder in ("accounts", "assets", "compliance", "marketplace", "chain", "templates"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".html", ".txt") and "tests" not in path.parts and "migrations" not in path.parts:
                assert ":8000" not in path.read_text(), path


@pytest.mark.django_db
def test_mail_links_and_the_arc3_link_use_the_setting(settings, django_capture_on_commit_callbacks):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8765"
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        notify(user=user, subject="Hello", body="Body", path=reverse("marketplace:portfolio"))
    assert "http://127.0.0.1:8765/market/portfolio/" in mail.outbox[-1].body
    asset = AssetFactory()
    assert metadata.metadata_url(asset).startswith("http://127.0.0.1:8765/assets/m/")
