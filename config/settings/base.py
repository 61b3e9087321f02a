"""Settings shared by every mode. Each mode module (local, test, production) imports
this one and overrides what differs; every value that varies by deployment comes from
the environment (django-environ)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("RWA_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "django_countries",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "compliance",
    "assets",
    "marketplace",
    "chain",
    "api",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # X-Request-ID on every response and log line, carried into Celery tasks; then the
    # request count and latency by view for /metrics (config/request_id.py, config/metrics.py).
    "config.request_id.RequestIdMiddleware",
    "config.metrics.MetricsMiddleware",
    # Outside SessionMiddleware: a lost database connection (or SQLite still locked) is a
    # 503 "please try again", also when the session save is what hit it.
    "config.db_unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A signed-out HTMX request or POST goes to the sign-in page with `next` set to the
    # page the visitor was on (config/login_redirect.py).
    "config.login_redirect.LoginRedirectMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.mfa.StaffMfaMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
            ],
        },
    },
]


def database_from_env(default: str | None = None) -> dict:
    """DATABASE_URL (or `default`) as a Django database. PostgreSQL gets a connect timeout
    so a dead server fails a request or /readyz in seconds instead of hanging.

    SQLite (the embedded mode) serves concurrent requests with one connection per
    runserver thread plus the worker's. Each transaction takes SQLite's write lock when
    it begins (BEGIN IMMEDIATE), so writers queue on the busy timeout instead of failing
    with "database is locked" when a read lock cannot be upgraded (the deferred default:
    18 of 20 parallel withdrawals failed with HTTP 500; WAL or a timeout alone do not fix
    that). WAL lets reads go on while one transaction writes. Measured by
    bench/embedded_concurrency (docs/benchmarks.md).

    A kept connection (CONN_MAX_AGE > 0) is checked before its first use in each request
    (CONN_HEALTH_CHECKS): one that died while idle (database restarted, idle connections
    dropped) is replaced instead of failing that request with a 500."""
    db = env.db("DATABASE_URL", default=default) if default else env.db("DATABASE_URL")
    db["ATOMIC_REQUESTS"] = False
    db["CONN_HEALTH_CHECKS"] = True
    options = db.setdefault("OPTIONS", {})
    if "postgresql" in db["ENGINE"]:
        options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5))
    elif "sqlite" in db["ENGINE"]:
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", env.int("DB_SQLITE_BUSY_TIMEOUT", default=20))  # seconds
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
    return db


DATABASES = {"default": database_from_env(f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def with_shared_clients(caches: dict) -> dict:
    """CACHES with Django's Redis backend (CACHE_URL=redis://...) swapped for
    config.redis_cache.RedisCache: the same backend keeping one client per pool."""
    for config in caches.values():
        if config.get("BACKEND") == "django.core.cache.backends.redis.RedisCache":
            config["BACKEND"] = "config.redis_cache.RedisCache"
    return caches


CACHES = with_shared_clients({"default": env.cache("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")})

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:profile"

# django-allauth: email is the login, verification is mandatory, rate limits use CACHES.
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_PREVENT_ENUMERATION = True
# One address per account: the email page changes it (the new address takes over once it
# is verified) instead of collecting extra ones. A verification mail goes to whatever
# address is typed, so the page is limited (manage_email below) and that mail never names
# the account that asked (templates/account/email/email_confirmation_message.txt).
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[RWA Marketplace] "
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": env.str("RATE_LIMIT_LOGIN_FAILED", default="5/5m/ip,5/5m/key"),
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "5/h/user",
    "reauthenticate": "10/m/user",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Staff need an authenticator and a session that passed it before any back-office page
# (accounts/mfa.py). Only the embedded demo may turn it off; production pins it on.
STAFF_MFA_REQUIRED = env.bool("STAFF_MFA_REQUIRED", default=True)
MFA_TOTP_ISSUER = "RWA Marketplace"

SESSION_ENGINE = "config.sessions"  # the database store; a lost database is a 503, not a 400
SESSION_COOKIE_AGE = int(timedelta(minutes=30).total_seconds())  # inactivity timeout
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy: only our own static files; QR codes for TOTP are data: SVGs.
# Directive values: source lists, or True for a valueless directive (production adds
# upgrade-insecure-requests).
CONTENT_SECURITY_POLICY: dict[str, dict[str, list[str] | bool]] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT: Path | None = VAR_DIR / "staticfiles"  # None in embedded mode (local.py)
# Private files (asset data room, KYC documents) live outside any public URL and are
# served only through permission-checked views.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": PRIVATE_MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@rwa.example")

MESSAGE_TAGS = {40: "error", 30: "warning", 25: "success", 20: "info", 10: "debug"}

# Celery: broker from the environment. Time limits and late acks so a worker that dies
# mid-task leaves the message to be redelivered instead of lost.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each task, so
# each task paid a new PostgreSQL connection (a backend fork). Keep them across tasks;
# chain.tasks applies Django's own rules instead (CONN_MAX_AGE, drop a broken connection).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each transport reads its own keys and ignores the others': visibility_timeout is Redis's
# redelivery delay; confirm_publish makes RabbitMQ confirm each publish once the message is
# on disk, so a message the web process handed over survives a broker kill -9 (without it,
# chain/tests/test_broker_loss.py lost the messages published just before the kill).
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 300, "confirm_publish": True}
CELERY_BEAT_SCHEDULE = {
    "purge-unverified-signups": {
        "task": "accounts.tasks.purge_unverified_signups",
        "schedule": timedelta(hours=1),
    },
    # Idempotent (each reminder is claimed once), so running it often only makes it timely.
    "kyc-expiry-reminders": {
        "task": "compliance.tasks.kyc_expiry_reminders",
        "schedule": timedelta(hours=6),
    },
}
UNVERIFIED_SIGNUP_TTL = timedelta(days=7)

# Algorand. Defaults point at the devnet that `make run` and the test suite start.
ALGOD_URL = env.str("ALGOD_URL", default="")
ALGOD_TOKEN = env.str("ALGOD_TOKEN", default="")
ALGOD_NETWORK = env.str("ALGOD_NETWORK", default="devnet")
ALGOD_TIMEOUT_SECONDS = env.int("ALGOD_TIMEOUT_SECONDS", default=10)
# Block explorer of the network, as URL templates with {txid} and {asset_id} (e.g.
# "https://explorer.example/tx/{txid}"): txids and asset ids link there. Empty (the
# devnet): they link to our own pages, /chain/tx/<txid>/ and /chain/asset/<id>/, which
# read algod (chain/explorer.py).
ALGOD_EXPLORER_TX_URL = env.str("ALGOD_EXPLORER_TX_URL", default="")
ALGOD_EXPLORER_ASSET_URL = env.str("ALGOD_EXPLORER_ASSET_URL", default="")
# A devnet genesis (rwa-devnet-*) is refused unless this is on; production defaults it off.
ALGOD_ALLOW_DEVNET = env.bool("ALGOD_ALLOW_DEVNET", default=True)
# Where chain_bootstrap finds the devnet dispenser (DIR/genesis.json); empty elsewhere.
DEVNET_DATA_DIR = env.str("DEVNET_DATA_DIR", default="")

# Key custody (chain/custody.py, docs/chain.md). Master keys wrap a per-record data key.
# CUSTODY_MASTER_KEYS is "key-id:base64-32-bytes" entries separated by ";" (old ids stay
# listed while `rotate_keys` re-wraps); CUSTODY_MASTER_KEY_FILE holds the same, one a line.
CUSTODY_BACKEND = env.str("CUSTODY_BACKEND", default="chain.custody.LocalMasterKeyBackend")
CUSTODY_MASTER_KEYS = env.str("CUSTODY_MASTER_KEYS", default="")
CUSTODY_MASTER_KEY_FILE = env.str("CUSTODY_MASTER_KEY_FILE", default="")
CUSTODY_ACTIVE_KEY_ID = env.str("CUSTODY_ACTIVE_KEY_ID", default="")

# Transaction outbox (chain/services.py). Times in seconds.
CHAIN_TX_VALIDITY_ROUNDS = env.int("CHAIN_TX_VALIDITY_ROUNDS", default=1000)
CHAIN_CONFIRMATION_WAIT_ROUNDS = env.int("CHAIN_CONFIRMATION_WAIT_ROUNDS", default=4)
CHAIN_RETRY_BASE_SECONDS = env.float("CHAIN_RETRY_BASE_SECONDS", default=2.0)
CHAIN_RETRY_MAX_SECONDS = env.float("CHAIN_RETRY_MAX_SECONDS", default=120.0)
CHAIN_OUTBOX_STALE_SECONDS = env.float("CHAIN_OUTBOX_STALE_SECONDS", default=60.0)
CHAIN_SWEEP_INTERVAL_SECONDS = env.float("CHAIN_SWEEP_INTERVAL_SECONDS", default=30.0)
# A transfer committed while a wake for its sender waits sends no task of its own
# (chain.worker.wake); a wake not taken within this long is presumed lost.
CHAIN_WAKE_SECONDS = env.float("CHAIN_WAKE_SECONDS", default=10.0)
# A sweep re-enqueues overdue rows only until the settlement queue holds this many messages.
CHAIN_SWEEP_BATCH = env.int("CHAIN_SWEEP_BATCH", default=1000)
# /readyz fails (chain.health.check_outbox) when an outbox row has waited longer than this
# and no worker has taken a task (heartbeat, chain/heartbeat.py) for as long: nothing settles.
CHAIN_WORKER_STALL_SECONDS = env.float("CHAIN_WORKER_STALL_SECONDS", default=300.0)
# A worker process that has received no task for this long while an outbox row has waited
# as long exits, so its process manager starts a fresh one (chain/watchdog.py); 0 = off.
CHAIN_WORKER_WEDGE_SECONDS = env.float("CHAIN_WORKER_WEDGE_SECONDS", default=300.0)
# Fault injection for the crash tests only: sleep between submit and recording confirmation.
CHAIN_PAUSE_AFTER_SUBMIT_SECONDS = env.float("CHAIN_PAUSE_AFTER_SUBMIT_SECONDS", default=0.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "chain-outbox-sweep": {
            "task": "chain.tasks.outbox_sweep",
            "schedule": timedelta(seconds=CHAIN_SWEEP_INTERVAL_SECONDS),
        },
        "chain-reconcile": {
            "task": "marketplace.tasks.reconcile_holdings",
            "schedule": timedelta(hours=1),
        },
        "trade-orders-expire": {
            "task": "marketplace.tasks.trade_orders_expire",
            "schedule": timedelta(seconds=env.float("MARKETPLACE_EXPIRY_INTERVAL_SECONDS", default=30.0)),
        },
        "distributions-pay-due": {
            "task": "marketplace.tasks.distributions_pay_due",
            "schedule": timedelta(seconds=env.float("MARKETPLACE_DISTRIBUTION_INTERVAL_SECONDS", default=3600.0)),
        },
        "webhooks-sweep": {
            "task": "webhooks.tasks.sweep",
            "schedule": timedelta(seconds=env.float("WEBHOOKS_SWEEP_INTERVAL_SECONDS", default=30.0)),
        },
        "auctions-run": {
            "task": "marketplace.tasks.auctions_run",
            "schedule": timedelta(seconds=env.float("MARKETPLACE_AUCTION_INTERVAL_SECONDS", default=15.0)),
        },
    }
)

# Webhooks (docs/webhooks.md). WEBHOOKS_ALLOW_PRIVATE lets endpoints use http:// and
# private or loopback addresses: the test and local settings only, never production.
WEBHOOKS_ALLOW_PRIVATE = False
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=5.0)
# Waits after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last.
WEBHOOKS_RETRY_SCHEDULE = (30, 120, 600, 3600, 6 * 3600)
WEBHOOKS_MAX_ATTEMPTS = len(WEBHOOKS_RETRY_SCHEDULE) + 1
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=20)
WEBHOOKS_MAX_ENDPOINTS = 10
WEBHOOKS_RATE_LIMIT = (30, 3600)  # endpoint changes per user per hour

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# /readyz: name -> dotted path of a check (config/health.py says what a check returns).
READINESS_CHECKS = {
    "database": "config.health.check_database",
    "broker": "config.health.check_broker",
    "algod": "chain.health.check_algod",
    "settlement": "chain.health.check_outbox",
}

# /metrics (config/metrics.py, Prometheus text format): answered only to a bearer token
# equal to METRICS_TOKEN or a client address (or network) in METRICS_ALLOWED_IPS, a 404
# to anyone else. Production allows no address unless METRICS_ALLOWED_IPS is set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS: list[str] = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
# What apps above config compute for /metrics, as dotted paths (as READINESS_CHECKS).
METRICS_SOURCES = {
    "worker_heartbeat_age": "chain.heartbeat.worker_heartbeat_age",
    "kyc_review_queue": "compliance.selectors.kyc_review_queue",
    "last_checks": "marketplace.check_results.last_check_results",
}

# Product rules that vary by deployment (each also in the README's table).
# Platform fee of a new offering, in basis points of the gross (staff change it per offering).
MARKETPLACE_DEFAULT_FEE_BPS = env.int("MARKETPLACE_DEFAULT_FEE_BPS", default=100)
# Orders an investor may place per window: (count, seconds).
MARKETPLACE_ORDER_RATE_LIMIT = tuple(env.list("MARKETPLACE_ORDER_RATE_LIMIT", cast=int, default=[10, 60]))
# Secondary market (docs/trading.md). Fees of a new market, in basis points of price ×
# quantity: the resting order's owner pays the maker fee, the incoming one's the taker fee.
MARKETPLACE_MAKER_FEE_BPS = env.int("MARKETPLACE_MAKER_FEE_BPS", default=10)
MARKETPLACE_TAKER_FEE_BPS = env.int("MARKETPLACE_TAKER_FEE_BPS", default=25)
# Open trade orders an investor may have on one asset's book.
MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET = env.int("MARKETPLACE_MAX_OPEN_ORDERS_PER_ASSET", default=20)
# Trade orders (placed or replaced) an investor may submit per window: (count, seconds).
MARKETPLACE_TRADE_ORDER_RATE = tuple(env.list("MARKETPLACE_TRADE_ORDER_RATE", cast=int, default=[30, 60]))
# Price checks consulted before an order is reserved: dotted paths of callables
# (market, side, limit_price_minor) -> compliance.eligibility.RuleFailure | None.
MARKETPLACE_PRICE_CHECKS: list[str] = env.list("MARKETPLACE_PRICE_CHECKS", default=[])
# Price bands (docs/market-integrity.md): an order priced more than this % from the
# reference price is refused; a trade that would print outside it calls an auction.
MARKETPLACE_PRICE_BAND_PCT = env.int("MARKETPLACE_PRICE_BAND_PCT", default=20)
# Periodic call auctions (marketplace/auction.py): a clearing price outside the band
# extends the auction by this many seconds, at most this many times in a row, then it is
# skipped; beat looks for due auctions every MARKETPLACE_AUCTION_INTERVAL_SECONDS.
MARKETPLACE_AUCTION_EXTENSION_SECONDS = env.int("MARKETPLACE_AUCTION_EXTENSION_SECONDS", default=300)
MARKETPLACE_AUCTION_MAX_EXTENSIONS = env.int("MARKETPLACE_AUCTION_MAX_EXTENSIONS", default=3)
MARKETPLACE_AUCTION_INTERVAL_SECONDS = env.float("MARKETPLACE_AUCTION_INTERVAL_SECONDS", default=15.0)
# Seconds a continuous book collects orders before its reopening auction after a halt,
# and before the auction called when a trade would print outside the band.
MARKETPLACE_REOPENING_AUCTION_SECONDS = env.int("MARKETPLACE_REOPENING_AUCTION_SECONDS", default=300)
MARKETPLACE_BAND_AUCTION_SECONDS = env.int("MARKETPLACE_BAND_AUCTION_SECONDS", default=300)
# The last trade is the reference price for this many days; then the latest valuation.
MARKETPLACE_REFERENCE_TRADE_DAYS = env.int("MARKETPLACE_REFERENCE_TRADE_DAYS", default=7)
# How long an approved KYC stays valid, in days.
KYC_VALIDITY_DAYS = env.int("KYC_VALIDITY_DAYS", default=365)
# Fuzzy-match score (0-100) at or above which a name is a sanctions hit.
SANCTIONS_MATCH_THRESHOLD = env.int("SANCTIONS_MATCH_THRESHOLD", default=88)
# Funding (docs/funding.md): the platform's bank account per currency that investors pay
# into, shown on the "Add funds" page with their payment reference. Keys per currency:
# holder, iban, bic, bank; "demo": true makes the page warn that it is not a real account.
# The defaults are DEMO values (published example IBANs), never real accounts: production
# sets PLATFORM_BANK_ACCOUNTS as JSON, e.g.
# {"EUR": {"holder": "…", "iban": "…", "bic": "…", "bank": "…"}}.
PLATFORM_BANK_ACCOUNTS: dict[str, dict] = env.json(
    "PLATFORM_BANK_ACCOUNTS",
    default={
        "EUR": {
            "holder": "RWA Marketplace B.V.",
            "iban": "NL91ABNA0417164300",
            "bic": "ABNANL2A",
            "bank": "ABN AMRO Bank N.V. (demo account)",
            "demo": True,
        },
        "USD": {
            "holder": "RWA Marketplace B.V.",
            "iban": "GB29NWBK60161331926819",
            "bic": "NWBKGB2L",
            "bank": "National Westminster Bank (demo account)",
            "demo": True,
        },
        "GBP": {
            "holder": "RWA Marketplace B.V.",
            "iban": "GB33BUKB20201555555555",
            "bic": "BUKBGB22",
            "bank": "Barclays Bank UK (demo account)",
            "demo": True,
        },
    },
)
# Largest bank statement file the back office and import_bank_statement accept, in bytes.
BANK_STATEMENT_MAX_BYTES = env.int("BANK_STATEMENT_MAX_BYTES", default=5 * 1024 * 1024)
# Payouts (docs/funding.md): a new payout account can be used for withdrawals this many
# hours after it was added (a mail tells the investor at once: account-takeover defence).
PAYOUT_ACCOUNT_COOLING_OFF_HOURS = env.int("PAYOUT_ACCOUNT_COOLING_OFF_HOURS", default=24)
# The debtor of SEPA payout files when PLATFORM_BANK_ACCOUNTS has no "EUR" entry: the
# platform's EUR account that pays the withdrawals.
PAYOUT_DEBTOR_ACCOUNT = {
    "holder": env.str("PAYOUT_DEBTOR_HOLDER", default="RWA Marketplace B.V."),
    "iban": env.str("PAYOUT_DEBTOR_IBAN", default="NL91ABNA0417164300"),
    "bic": env.str("PAYOUT_DEBTOR_BIC", default="ABNANL2A"),
}
# Seconds the public catalogue page is cached (bumped on every change anyway).
CATALOGUE_CACHE_SECONDS = env.int("CATALOGUE_CACHE_SECONDS", default=300)
# An asset's public photo gallery (docs/assets.md "Photo gallery"): largest upload in
# bytes, largest image in pixels (width × height, checked from the header before anything
# is decoded: the decompression-bomb guard), photos per asset.
ASSET_IMAGE_MAX_BYTES = env.int("ASSET_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
ASSET_IMAGE_MAX_PIXELS = env.int("ASSET_IMAGE_MAX_PIXELS", default=40_000_000)
ASSET_IMAGES_PER_ASSET = env.int("ASSET_IMAGES_PER_ASSET", default=20)

# Absolute base URL of the public site: ARC-3 metadata URLs on chain start with it
# (at most 96 bytes in all, so keep it short).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# Public REST API (api/, docs/api.md): rate limits as (count, seconds). Every request per
# client address; authenticated requests also per token; order placement per token (the
# engine's own MARKETPLACE_TRADE_ORDER_RATE applies as well); presented tokens that fail
# to authenticate, per address.
API_RATE_LIMIT_ADDRESS = tuple(env.list("API_RATE_LIMIT_ADDRESS", cast=int, default=[300, 60]))
API_RATE_LIMIT_TOKEN = tuple(env.list("API_RATE_LIMIT_TOKEN", cast=int, default=[120, 60]))
API_RATE_LIMIT_ORDERS = tuple(env.list("API_RATE_LIMIT_ORDERS", cast=int, default=[10, 60]))
API_RATE_LIMIT_AUTH_FAILED = tuple(env.list("API_RATE_LIMIT_AUTH_FAILED", cast=int, default=[20, 300]))
