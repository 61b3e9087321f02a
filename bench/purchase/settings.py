"""Settings of the purchase bench's gunicorn: the test settings (PostgreSQL, Redis cache
and broker, DEBUG off) plus a bench-only URLconf with a bare view, and the production
database connection policy (persistent connections), so page figures do not measure a
new PostgreSQL connection per request that production would not open."""

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES, env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.purchase.urls"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
