"""X-Request-ID (config/request_id.py): taken when safe, replaced when hostile, on every
log line (JSON in production) and carried into Celery tasks (config/celery_request_id.py)."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.app.task import Context
from django.db import connection
from django.urls import reverse
from pythonjsonlogger.json import JsonFormatter

from config import celery_request_id
from config.celery import app
from config.request_id import REQUEST_ID, RequestIdFilter

ROOT = Path(__file__).resolve().parents[2]
NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def no_request_id():
    token = REQUEST_ID.set(None)
    yield
    REQUEST_ID.reset(token)


@pytest.mark.parametrize(
    "value", ["abc", "lb-7f3a.2024_11-XYZ", "a" * 64, "0", "8c192c42a6644cf8a620a17248d7362d"]
)  # a uuid4 hex, fixed: xdist collects in every process
def test_a_safe_request_id_is_echoed(client, value):
    response = client.get(reverse("healthz"), HTTP_X_REQUEST_ID=value)
    assert response["X-Request-ID"] == value


@pytest.mark.parametrize(
    "value",
    [
        "x" * 10_000,
        "a" * 65,
        "abc\x00def",
        "abc\ndef",
        "abc\r\nSet-Cookie: a=b",
        "",
        "with space",
        "ünïcode",
        "semi;colon",
        '"quoted"',
        "abc\n",  # a trailing newline must not slip past the pattern
    ],
)
def test_a_hostile_request_id_is_replaced(client, value):
    response = client.get(reverse("healthz"), HTTP_X_REQUEST_ID=value)
    assert NEW_ID.fullmatch(response["X-Request-ID"])


def test_without_a_header_each_request_gets_its_own_id(client):
    first = client.get(reverse("healthz"))["X-Request-ID"]
    second = client.get(reverse("healthz"))["X-Request-ID"]
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second) and first != second


@pytest.mark.django_db
def test_every_response_carries_it_errors_included(client):
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID="trace-404")
    assert response.status_code == 404 and response["X-Request-ID"] == "trace-404"


@pytest.fixture
def json_log():
    """A handler as production's LOGGING builds it (JSON formatter, the request id filter)
    on the root logger; yields the stream it writes to."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_log_lines_during_a_request_carry_its_id(client, json_log):
    # Django logs a 405 on django.request ("Method Not Allowed") inside the request.
    response = client.post(reverse("healthz"), HTTP_X_REQUEST_ID="click-42")
    logging.getLogger("config.tests").warning("after the request")

    assert response.status_code == 405
    lines = json_lines(json_log)
    during = [line for line in lines if line["logger"] == "django.request"]
    assert during and during[0]["request_id"] == "click-42"
    assert during[0]["level"] == "WARNING" and "Method Not Allowed" in during[0]["message"]
    assert lines[-1]["message"] == "after the request" and lines[-1]["request_id"] == "-"


def test_production_logs_one_json_object_a_line_with_the_request_id():
    """The real production settings in a fresh process: its LOGGING, its middleware."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "p" * 50,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "PRIVATE_MEDIA_ROOT": "/tmp/rwa-private",
        "LOG_LEVEL": "INFO",
    }
    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().post('/healthz', secure=True, headers={'X-Request-ID': 'order-click-7'}); "
        "print(r.status_code, r['X-Request-ID'])"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["405", "order-click-7"]
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("logger") == "django.request"]
    assert logged, run.stderr[-2000:]
    assert logged[0]["request_id"] == "order-click-7"
    assert logged[0]["level"] == "WARNING" and "Method Not Allowed" in logged[0]["message"]
    assert {"time", "level", "logger", "message", "request_id"} <= logged[0].keys()


# --- Celery ------------------------------------------------------------------------------


def fake_task(headers: dict | None = None) -> SimpleNamespace:
    """What task_prerun hands the handler: a task whose request is built from the message
    headers, as the worker builds it (celery.app.task.Context)."""
    return SimpleNamespace(request=Context(headers or {}))


def test_publishing_during_a_request_puts_its_id_in_the_message_headers():
    headers: dict = {"task": "some.task"}
    REQUEST_ID.set("click-1")
    celery_request_id.request_id_into_headers(headers=headers, body=(), exchange="", routing_key="celery")
    assert headers[celery_request_id.HEADER] == "click-1"


def test_publishing_outside_a_request_adds_nothing():
    headers: dict = {"task": "some.task"}
    celery_request_id.request_id_into_headers(headers=headers)
    assert celery_request_id.HEADER not in headers


def test_the_worker_runs_the_task_with_the_id_and_puts_it_back_after():
    task = fake_task({celery_request_id.HEADER: "click-2"})

    celery_request_id.request_id_set_for_task(task_id="t-1", task=task)
    assert REQUEST_ID.get() == "click-2"
    celery_request_id.request_id_reset_after_task(task_id="t-1", task=task)

    assert REQUEST_ID.get() is None
    assert "t-1" not in celery_request_id._tokens


@pytest.mark.parametrize("header", [None, "evil\nline", "x" * 65])
def test_a_task_without_a_usable_id_gets_its_own(header):
    headers = {} if header is None else {celery_request_id.HEADER: header}

    celery_request_id.request_id_set_for_task(task_id="t-2", task=fake_task(headers))
    own = REQUEST_ID.get()
    celery_request_id.request_id_reset_after_task(task_id="t-2")

    assert own is not None and NEW_ID.fullmatch(own)
    assert REQUEST_ID.get() is None


def test_a_task_run_eagerly_in_a_request_keeps_the_request_id():
    REQUEST_ID.set("click-3")
    celery_request_id.request_id_set_for_task(task_id="t-3", task=fake_task())
    assert REQUEST_ID.get() == "click-3"
    celery_request_id.request_id_reset_after_task(task_id="t-3")
    assert REQUEST_ID.get() == "click-3"


def test_the_id_travels_in_a_real_message_to_the_task_request():
    """Publish through the real Celery app to the broker, read the message back, and
    build the worker's task request from it: the id is there for task_prerun."""
    queue = f"rwa-test-request-id-{uuid.uuid4().hex[:8]}"
    REQUEST_ID.set("click-4")
    app.send_task("config.tests.no_such_task", queue=queue, routing_key=queue)
    with app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            message = simple.get(block=True, timeout=10)
            message.ack()
        finally:
            simple.clear()
            simple.close()
            conn.default_channel.queue_delete(queue)

    assert message.headers[celery_request_id.HEADER] == "click-4"
    assert celery_request_id.request_id_of_task(fake_task(message.headers)) == "click-4"
