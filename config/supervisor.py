"""Keep child processes running: start a command, and when it exits, say so and start it
again after an exponential back-off (capped). `make run` (scripts/run_embedded.py)
supervises the web server, the worker and devnet with it; production uses systemd's
`Restart=always` for the same (docs/deploy/).

A child that stayed up for `stable_after` seconds is considered healthy again, so its next
exit restarts after the initial delay; one that keeps crashing waits longer each time, up
to `max_delay`. Standard library only: the runner imports it before Django is set up."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO


def backoff_delay(failures: int, *, initial: float, factor: float, maximum: float) -> float:
    """Delay before the restart that follows the `failures`-th consecutive quick exit (1-based)."""
    if failures < 1:
        return 0.0
    return min(maximum, initial * factor ** (failures - 1))


class Supervisor:
    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        initial_delay: float = 1.0,
        factor: float = 2.0,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        **popen_kwargs: Any,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.initial_delay = initial_delay
        self.factor = factor
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.out = out
        self.clock = clock
        self.popen_kwargs = {"start_new_session": True, **popen_kwargs}
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.failures = 0  # consecutive exits within stable_after of their start
        self.restarts = 0
        self.exit_codes: list[int] = []
        self.delays: list[float] = []
        self.restart_at: float | None = None
        self.stopping = False

    def _say(self, message: str) -> None:
        print(message, file=self.out if self.out is not None else sys.stderr, flush=True)

    def start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(self.command, **self.popen_kwargs)
        self.started_at = self.clock()
        self.restart_at = None
        return self.proc

    def adopt(self, proc: subprocess.Popen) -> None:
        """Supervise a child someone else started (devnet, started and waited for by the runner)."""
        self.proc = proc
        self.started_at = self.clock()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poll(self) -> None:
        """Call periodically: notices an exit, schedules the restart, and performs it when due."""
        if self.stopping or self.proc is None:
            return
        now = self.clock()
        if self.restart_at is None:
            code = self.proc.poll()
            if code is None:
                return
            self.failures = 1 if now - self.started_at >= self.stable_after else self.failures + 1
            delay = backoff_delay(self.failures, initial=self.initial_delay, factor=self.factor, maximum=self.max_delay)
            self.exit_codes.append(code)
            self.delays.append(delay)
            self.restart_at = now + delay
            self._say(f"{self.name} exited with code {code}; restarting in {delay:g}s")
        if now >= self.restart_at:
            self.restarts += 1
            self.start()
            self._say(f"{self.name} restarted (pid {self.proc.pid}, restart {self.restarts})")

    def terminate(self) -> None:
        self.stopping = True
        if self.running:
            assert self.proc is not None
            self.proc.terminate()  # the leader shuts its own children down (Celery's pool)

    def wait_or_kill(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def stop_all(supervisors: Sequence[Supervisor], timeout: float = 10.0) -> None:
    """Terminate every child, then SIGKILL the process group of any still alive after
    `timeout`; in the given order (devnet last)."""
    for sup in supervisors:
        sup.terminate()
    deadline = time.monotonic() + timeout
    for sup in supervisors:
        sup.wait_or_kill(deadline - time.monotonic())
