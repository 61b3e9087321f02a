"""Embedded mode for `make run`: SQLite and a file cache under var/, Celery on kombu's
filesystem transport (no server), emails printed to the console and written to var/mail."""

from .base import *  # noqa: F403
from .base import MIDDLEWARE, VAR_DIR, env

# DEBUG off by default: the demo shows the site's own 404/500 pages (with the CSP), not
# Django's technical pages with every URL pattern and tracebacks. DJANGO_DEBUG=1 for those.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-dev-only-not-secret-" + "x" * 40)

# Static files without DEBUG: WhiteNoise (as in production, right after SecurityMiddleware)
# serves them straight from the finders (static/ and the apps'), so no collectstatic.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [*MIDDLEWARE[:_security], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[_security:]]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG  # pick up edited files while developing
STATIC_ROOT = None  # nothing collected in this mode; WhiteNoise would warn about a missing directory

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

# The demo's staff accounts have no authenticator; set STAFF_MFA_REQUIRED=1 to try the
# production rule (staff are sent to set one up before the back office opens).
STAFF_MFA_REQUIRED = env.bool("STAFF_MFA_REQUIRED", default=False)
# Webhook receivers on 127.0.0.1 over http (the tests' and the demo's); never in production.
WEBHOOKS_ALLOW_PRIVATE = True
