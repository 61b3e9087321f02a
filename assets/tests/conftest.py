import pytest


@pytest.fixture(autouse=True)
def _private_storage(settings, tmp_path):
    """Every asset test writes its files into its own temporary private storage."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }
