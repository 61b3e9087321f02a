import os

from celery import Celery

from . import celery_request_id  # noqa: F401  # carries the request id into tasks (signal handlers)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Every task retries promptly when it loses the database (config/db_unavailable.py).
app = Celery("rwa", task_cls="config.db_unavailable:DatabaseRetryTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
