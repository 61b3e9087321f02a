"""The embedded mode's own settings (config.settings.local), with the SQLite connection
options replaced by BENCH_SQLITE_OPTIONS (JSON) when given, so the bench can measure
the options the embedded mode ships with against the alternatives, and without the
503 fallback (config/db_unavailable.py) when BENCH_WITHOUT_FALLBACK=1."""

import json
import os

from config.settings.local import *  # noqa: F403
from config.settings.local import DATABASES, MIDDLEWARE

if os.environ.get("BENCH_SQLITE_OPTIONS") is not None:
    DATABASES["default"]["OPTIONS"] = json.loads(os.environ["BENCH_SQLITE_OPTIONS"])
if os.environ.get("BENCH_WITHOUT_FALLBACK") == "1":
    MIDDLEWARE = [m for m in MIDDLEWARE if m != "config.db_unavailable.DatabaseUnavailableMiddleware"]
