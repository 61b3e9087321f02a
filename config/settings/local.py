"""Embedded mode for `make run`: SQLite and a file cache under var/, Celery on kombu's
filesystem transport (no server), emails printed to the console and written to var/mail."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-dev-only-not-secret-" + "x" * 40)

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "data_folder_in": str(BROKER_DIR / "queue"),
    "data_folder_out": str(BROKER_DIR / "queue"),
    "processed_folder": str(BROKER_DIR / "processed"),
    "control_folder": str(BROKER_DIR / "control"),  # default is ./control in the cwd
    "store_processed": False,
}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"

# The devnet that scripts/run_embedded.py starts, and a master key file it generates.
ALGOD_URL = env.str("ALGOD_URL", default="http://127.0.0.1:4001")
ALGOD_TOKEN = env.str("ALGOD_TOKEN", default="a" * 64)
DEVNET_DATA_DIR = env.str("DEVNET_DATA_DIR", default=str(VAR_DIR / "devnet"))
CUSTODY_MASTER_KEY_FILE = env.str("CUSTODY_MASTER_KEY_FILE", default=str(VAR_DIR / "custody-master.keys"))
