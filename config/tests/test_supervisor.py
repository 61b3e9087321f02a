"""config/supervisor.py: the embedded runner restarts a child that exits, with a capped
exponential back-off, and says so on the console. Real child processes."""

import io
import sys
import time

import pytest

from config.supervisor import Supervisor, backoff_delay, stop_all


def test_backoff_doubles_and_is_capped():
    delays = [backoff_delay(n, initial=1.0, factor=2.0, maximum=30.0) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def poll_until(sup: Supervisor, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        sup.poll()
        time.sleep(0.02)


def test_a_child_that_exits_is_restarted_with_growing_delays_until_it_stays_up(tmp_path):
    # Given a worker that exits with code 3 on its first two runs, then stays up
    runs = tmp_path / "runs"
    script = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(runs)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "sys.exit(3) if n < 2 else time.sleep(60)\n"
    )
    out = io.StringIO()
    sup = Supervisor("worker", [sys.executable, "-c", script], initial_delay=0.2, factor=2.0, max_delay=0.3, out=out)

    # When it is supervised
    started = time.monotonic()
    sup.start()
    try:
        poll_until(sup, lambda: sup.restarts == 2 and runs.exists() and runs.read_text() == "3")
        elapsed = time.monotonic() - started

        # Then it was restarted twice, after 0.2 s and then 0.3 s (doubled, capped), said so,
        # and the third run is still up
        assert sup.exit_codes == [3, 3]
        assert sup.delays == [0.2, 0.3]
        assert elapsed >= 0.5
        console = out.getvalue()
        assert "worker exited with code 3; restarting in 0.2s" in console
        assert "worker exited with code 3; restarting in 0.3s" in console
        for _ in range(10):
            sup.poll()
            time.sleep(0.02)
        assert sup.running and sup.restarts == 2
    finally:
        stop_all([sup], timeout=5)
    assert not sup.running


def test_a_child_that_ran_long_enough_restarts_after_the_initial_delay_again():
    clock = [0.0]
    sup = Supervisor("web", [sys.executable, "-c", "pass"], initial_delay=1.0, max_delay=30.0, stable_after=60.0)
    sup.clock = lambda: clock[0]
    sup.failures = 4  # it had been crashing

    sup.start()
    sup.proc.wait()
    clock[0] = 120.0  # but this run lasted two minutes
    sup.out = io.StringIO()
    sup.poll()

    assert sup.delays == [1.0]
    assert "web exited with code 0; restarting in 1s" in sup.out.getvalue()


def test_stop_prevents_restarts():
    sup = Supervisor(
        "worker", [sys.executable, "-c", "import time; time.sleep(30)"], initial_delay=0.0, out=io.StringIO()
    )
    sup.start()
    stop_all([sup], timeout=5)
    sup.poll()

    assert sup.restarts == 0 and not sup.running
    assert sup.proc is not None and sup.proc.returncode is not None


@pytest.mark.parametrize("code", [1, 3])
def test_exit_code_is_reported(code):
    out = io.StringIO()
    sup = Supervisor("beat", [sys.executable, "-c", f"import sys; sys.exit({code})"], initial_delay=5.0, out=out)
    sup.start()
    sup.proc.wait()
    sup.poll()
    assert f"beat exited with code {code}; restarting in 5s" in out.getvalue()
    assert sup.restarts == 0  # not yet due
    stop_all([sup])
