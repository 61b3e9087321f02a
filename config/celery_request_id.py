"""The request id (config/request_id.py) carried into Celery tasks.

- `before_task_publish` (the process that enqueues, usually a web request's on_commit):
  the current request id goes into the message headers as `rwa_request_id`.
- `task_prerun` (the worker): the task runs with that id in the ContextVar, so its log
  lines (and the tasks it enqueues in turn) carry it; a task with none (a beat task, a
  message from an older release) gets a new id of its own. A task run eagerly inside a
  request keeps the request's id.
- `task_postrun`: the ContextVar is put back as it was before the task.

Imported by config/celery.py, so every process that has the Celery app has the handlers."""

from __future__ import annotations

from contextvars import Token
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from .request_id import REQUEST_ID, is_safe, new_request_id

HEADER = "rwa_request_id"

# task id -> the ContextVar token to reset after the task (prerun and postrun are two calls).
_tokens: dict[str, Token[str | None]] = {}


@before_task_publish.connect(dispatch_uid="config.celery_request_id.publish")
def request_id_into_headers(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = REQUEST_ID.get()
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


def request_id_of_task(task: Any) -> str | None:
    """The safe request id the task's message carried, or None."""
    request = getattr(task, "request", None)
    value = getattr(request, HEADER, None)
    if value is None:  # some publishers nest custom headers under "headers"
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    return value if is_safe(value) else None


@task_prerun.connect(dispatch_uid="config.celery_request_id.prerun")
def request_id_set_for_task(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request_id = request_id_of_task(task) or REQUEST_ID.get() or new_request_id()
    token = REQUEST_ID.set(request_id)
    if task_id is not None:
        _tokens[task_id] = token


@task_postrun.connect(dispatch_uid="config.celery_request_id.postrun")
def request_id_reset_after_task(task_id: str | None = None, **kwargs: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is None:
        return
    try:
        REQUEST_ID.reset(token)
    except ValueError:  # set in another context (should not happen): clear it instead
        REQUEST_ID.set(None)
