"""Production's upload storage is a setting (several machines need a shared backend)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _storages(extra: dict) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "rwa.example",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "PRIVATE_MEDIA_ROOT": "/tmp/rwa-private-test",
        **extra,
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['default'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_default_is_the_filesystem_at_private_media_root():
    out = _storages({})
    assert "FileSystemStorage" in out and "/tmp/rwa-private-test" in out


def test_another_backend_and_its_options_come_from_the_environment():
    out = _storages(
        {
            "MEDIA_STORAGE_BACKEND": "storages.backends.s3.S3Storage",
            "MEDIA_STORAGE_OPTIONS": '{"bucket_name": "rwa-private", "default_acl": "private"}',
        }
    )
    assert "storages.backends.s3.S3Storage" in out and "rwa-private" in out
