"""Test mode: PostgreSQL, Redis (broker and cache), in-memory mail, fast hashing."""

from .base import *  # noqa: F403
from .base import database_from_env, env

SECRET_KEY = "test-only-not-secret-" + "x" * 40
DEBUG = False
DATABASES = {"default": database_from_env("postgres://postgres@127.0.0.1:5432/rwa")}

# `make test` runs the suite in pytest-xdist worker processes (gw0, gw1, ...). Each gets its
# own database (pytest-django adds the _gwN suffix), cache key prefix and broker database
# (the Redis db number plus N), so one process's Celery tasks and cache entries never reach
# another's; the worker subprocesses a test starts inherit them (tests/plugins/celery_worker.py).
_XDIST_WORKER = env.str("PYTEST_XDIST_WORKER", default="")
_XDIST_N = int(_XDIST_WORKER[2:]) if _XDIST_WORKER[2:].isdigit() else 0


def _redis_db_plus(url: str, n: int) -> str:
    base, _, db = url.rstrip("/").rpartition("/")
    return f"{base}/{int(db) + n}" if n and db.isdigit() and base.count("/") >= 2 else url


CACHES = {
    "default": {
        "BACKEND": "config.redis_cache.RedisCache",
        "LOCATION": env.str("CACHE_REDIS_URL", default="redis://127.0.0.1:6379/1"),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="rwa-test") + (f"-{_XDIST_WORKER}" if _XDIST_N else ""),
    }
}
CELERY_BROKER_URL = _redis_db_plus(env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/2"), _XDIST_N)
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]

# A fixed, public test master key: test keys protect nothing. The devnet fixture
# (tests/plugins/devnet.py) sets ALGOD_URL/TOKEN and DEVNET_DATA_DIR for the session.
CUSTODY_MASTER_KEYS = env.str("CUSTODY_MASTER_KEYS", default="test-1:" + "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=")
CUSTODY_ACTIVE_KEY_ID = env.str("CUSTODY_ACTIVE_KEY_ID", default="test-1")
CHAIN_RETRY_BASE_SECONDS = env.float("CHAIN_RETRY_BASE_SECONDS", default=0.5)
CHAIN_RETRY_MAX_SECONDS = env.float("CHAIN_RETRY_MAX_SECONDS", default=3.0)
CHAIN_OUTBOX_STALE_SECONDS = env.float("CHAIN_OUTBOX_STALE_SECONDS", default=5.0)
CHAIN_CONFIRMATION_WAIT_ROUNDS = env.int("CHAIN_CONFIRMATION_WAIT_ROUNDS", default=2)
ALGOD_TIMEOUT_SECONDS = env.int("ALGOD_TIMEOUT_SECONDS", default=5)
# Staff log in with force_login in most tests; accounts/tests/test_staff_access.py turns
# the staff second-factor rule on and proves it.
STAFF_MFA_REQUIRED = False
# Webhook receivers on 127.0.0.1 over http (the tests' and the demo's); never in production.
WEBHOOKS_ALLOW_PRIVATE = True
