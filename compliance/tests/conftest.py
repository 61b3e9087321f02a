from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(autouse=True)
def _private_storage(settings, tmp_path):
    """KYC documents of each test go to its own temporary private storage."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }


@pytest.fixture
def sample_sanctions(db):
    from compliance.screening import alt_csv_parse, sdn_csv_parse
    from compliance.services import sanctions_list_replace

    entries = sdn_csv_parse((DATA / "sdn_sample.csv").read_text())
    entries += alt_csv_parse((DATA / "alt_sample.csv").read_text(), {e.ent_num: e for e in entries})
    sanctions_list_replace(entries=entries)
    return entries
