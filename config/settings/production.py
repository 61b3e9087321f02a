"""Production: every secret from the environment, HTTPS only, WhiteNoise for static files."""

from .base import *  # noqa: F403
from .base import CONTENT_SECURITY_POLICY, MIDDLEWARE, database_from_env, env, with_shared_clients

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": database_from_env()}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
# Checked before each request's first query: a kept connection that died while idle
# (database restarted, idle connections dropped) is replaced, not a 500 (also set by
# database_from_env; stated here next to the connection age it goes with).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CACHES = with_shared_clients({"default": env.cache("CACHE_URL")})
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
# Real networks only: a devnet genesis is refused unless explicitly allowed (staging demos).
ALGOD_NETWORK = env.str("ALGOD_NETWORK", default="mainnet")
ALGOD_ALLOW_DEVNET = env.bool("ALGOD_ALLOW_DEVNET_IN_PRODUCTION", default=False)
CUSTODY_MASTER_KEYS = env.str("CUSTODY_MASTER_KEYS", default="")
# Not from the environment: staff always need a second factor in production.
STAFF_MFA_REQUIRED = True
WEBHOOKS_ALLOW_PRIVATE = False  # the SSRF guard is always on (docs/webhooks.md)

# WhiteNoise serves the collected static files, right after SecurityMiddleware.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]

# Uploaded files (data room, KYC documents, photos): the local filesystem at
# PRIVATE_MEDIA_ROOT by default; for several machines, another Django storage backend
# by its dotted path with its options as JSON, e.g. MEDIA_STORAGE_BACKEND=
# storages.backends.s3.S3Storage and MEDIA_STORAGE_OPTIONS={"bucket_name": "rwa-private",
# "default_acl": "private", "querystring_auth": true} (install django-storages[s3] first;
# docs/architecture.md "Operating at scale"). Files are always served through our views,
# never by public URL.
MEDIA_STORAGE_BACKEND = env.str("MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
STORAGES = {
    "default": {
        "BACKEND": MEDIA_STORAGE_BACKEND,
        "OPTIONS": env.json("MEDIA_STORAGE_OPTIONS", default={}) or {"location": env.str("PRIVATE_MEDIA_ROOT")},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CONTENT_SECURITY_POLICY = {
    **CONTENT_SECURITY_POLICY,
    "DIRECTIVES": {**CONTENT_SECURITY_POLICY["DIRECTIVES"], "upgrade-insecure-requests": True},
}

# /metrics: only the bearer token (METRICS_TOKEN) unless addresses are listed. Behind a
# reverse proxy on the same machine every visitor's REMOTE_ADDR is 127.0.0.1.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])

# One JSON object per log line (python-json-logger) with the request id
# (config/request_id.py): time, level, logger, message, request_id, and any exception.
# The Celery worker keeps this configuration instead of installing its own plain handler,
# so its lines are JSON too and carry the id of the request that enqueued the task.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
