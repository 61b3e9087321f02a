"""A real Celery worker process on the test broker (Redis), connected to the test
database. Tests that use it need committed data: mark them `transactional_db`."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    # The settings below are already this xdist worker's own; the child must not derive
    # them again from the worker id (config/settings/test.py).
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
    )
    # The chain layer's configuration as the test process sees it (devnet fixture,
    # overridden timings), so the worker talks to the same algod with the same keys.
    for name in (
        "ALGOD_URL",
        "ALGOD_TOKEN",
        "DEVNET_DATA_DIR",
        "CUSTODY_MASTER_KEYS",
        "CUSTODY_ACTIVE_KEY_ID",
        "CHAIN_RETRY_BASE_SECONDS",
        "CHAIN_RETRY_MAX_SECONDS",
        "CHAIN_OUTBOX_STALE_SECONDS",
        "CHAIN_WAKE_SECONDS",
        "CHAIN_TX_VALIDITY_ROUNDS",
        "CHAIN_PAUSE_AFTER_SUBMIT_SECONDS",
    ):
        value = getattr(settings, name, None)
        if value not in (None, ""):
            env[name] = str(value)
    return env


class WorkerProcess:
    SOLO = ("--pool", "solo", "--without-heartbeat")

    def __init__(self, log_path: Path, env: dict[str, str], options: tuple[str, ...] = SOLO):
        self.log_path = log_path
        self.env = env
        self.options = options
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                *self.options,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """Starts a worker; yields it; stops it. Purges the test queue first so messages
    left by an earlier run cannot leak into this one."""
    from chain.worker import queue_purge

    queue_purge()
    worker = WorkerProcess(tmp_path / "worker.log", _worker_env()).start()
    yield worker
    worker.stop()
