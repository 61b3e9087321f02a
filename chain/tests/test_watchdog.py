"""chain/watchdog.py: a worker that receives nothing while outbox rows wait exits, so its
process manager starts a fresh one."""

import time

import pytest

from chain import watchdog
from tests.plugins.celery_worker import WorkerProcess, _worker_env

from .test_health_outbox import pending_row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def idle_since(monkeypatch):
    def set_idle(seconds: float) -> None:
        monkeypatch.setattr(watchdog, "_last_received", time.monotonic() - seconds)

    return set_idle


def test_a_worker_that_receives_nothing_while_rows_wait_is_wedged(idle_since):
    pending_row(120)
    idle_since(90)
    reason = watchdog.wedged(limit=60)
    assert reason is not None and "received no task for 90s" in reason and "120s old" in reason


def test_a_worker_that_received_a_task_lately_is_not_wedged(idle_since):
    pending_row(120)
    idle_since(10)
    assert watchdog.wedged(limit=60) is None
    watchdog._note_received()  # what Celery's task_received does
    assert time.monotonic() - watchdog._last_received < 1


def test_an_idle_worker_with_nothing_waiting_is_not_wedged(idle_since):
    pending_row(30)  # younger than the limit: the sweeper has not had its chance yet
    idle_since(600)
    assert watchdog.wedged(limit=60) is None


def test_a_real_wedged_worker_exits_for_its_process_manager(tmp_path):
    """A real worker that consumes a queue nobody sends to, with an old pending row: it
    logs why and exits with status 70 within a few seconds (limit 2 s)."""
    pending_row(600)
    env = _worker_env()
    env["CHAIN_WORKER_WEDGE_SECONDS"] = "2"
    worker = WorkerProcess(tmp_path / "worker.log", env, options=(*WorkerProcess.SOLO, "-Q", "nobody-sends-here"))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker.proc.poll() == watchdog.EXIT_STATUS, worker.log()[-2000:]
        assert "worker wedged: received no task for" in worker.log()
    finally:
        worker.stop()
