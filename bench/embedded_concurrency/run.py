"""Concurrent writes against the embedded mode (`make run`): SQLite behind `runserver`.

    .venv/bin/python -m bench.embedded_concurrency.run [--requests 20] [--variants shipped,django-default,...]

For each SQLite option set (variant) the bench migrates a fresh SQLite database in a
temporary RWA_VAR_DIR, seeds investors with EUR deposits and signed-in sessions, starts
the web server exactly as scripts/run_embedded.py does (`manage.py runserver --noreload`,
threaded: one thread and one SQLite connection per request) with the embedded settings
(config.settings.local with its defaults, so DEBUG off), then fires --requests POSTs to
the withdrawal form at once (threads released together by a barrier), in two scenarios:

- many: --requests investors, each holding 100.00 EUR, each asks for 10.00 once;
  all must be accepted.
- one: one investor holding 100.00 EUR sends --requests requests for 10.00 at once;
  exactly ten must be accepted, the others refused ("you have 0.00 available").

It counts the responses by class (2xx/3xx/4xx, 503 = "busy, please try again", other 5xx;
the form answers a redirect for both an accepted and a refused withdrawal), then checks the books in the database: withdrawals
recorded, each investor's available + held equal to the deposit, held equal to the
withdrawals recorded, and `ledger_verify` clean. Needs nothing but the venv (no
PostgreSQL, Redis, devnet or worker). A run of all variants takes about a minute.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
WAL = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"
# None: the options config.settings.local ships with (config/settings/base.py database_from_env).
VARIANTS: dict[str, dict | None] = {
    "django-default": {},  # deferred transactions, rollback journal, Python's 5 s busy timeout
    "timeout-20s": {"timeout": 20},
    "wal": {"init_command": WAL},
    "wal+timeout-20s": {"init_command": WAL, "timeout": 20},
    "immediate": {"transaction_mode": "IMMEDIATE"},  # with the default 5 s timeout
    "shipped": None,
    # The shipped options with a busy timeout too short to wait out the queue: shows the
    # fallback (config/db_unavailable.py answers 503 "please try again").
    "immediate+wal-timeout-0.05s": {"transaction_mode": "IMMEDIATE", "timeout": 0.05, "init_command": WAL},
}
DEPOSIT_MINOR = 100_00
AMOUNT = "10.00"
AMOUNT_MINOR = 10_00
# Variables of the calling environment that would point the server elsewhere (the test
# suite's PostgreSQL, Redis, devnet): the embedded mode must run on its own defaults.
FOREIGN_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "DB_",
    "CACHE_",
    "CELERY_",
    "ALGOD_",
    "DEVNET_",
    "CUSTODY_",
    "CHAIN_",
    "EMAIL_",
    "BENCH_",
    "PYTEST_",
    "PUBLIC_BASE_URL",
    "PRIVATE_MEDIA_ROOT",
)


def embedded_env(
    var_dir: Path, *, settings: str = "config.settings.local", sqlite_options: dict | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    # DJANGO_DEBUG is not set either: the mode's own default (off) applies.
    env.update(DJANGO_SETTINGS_MODULE=settings, RWA_VAR_DIR=str(var_dir), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    if sqlite_options is not None:
        env["BENCH_SQLITE_OPTIONS"] = json.dumps(sqlite_options)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


class EmbeddedServer:
    """`manage.py runserver --noreload` as scripts/run_embedded.py starts it, on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> EmbeddedServer:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runserver exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"runserver did not answer /healthz:\n{self.log()[-3000:]}")

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def prepare(var_dir: Path, env: dict[str, str], groups: list[dict]) -> dict[str, dict[str, str]]:
    """Migrate the SQLite database in var_dir and seed the groups; returns their sessions."""
    run_python(env, "manage.py", "migrate", "--noinput", "-v", "0")
    return json.loads(run_python(env, "-m", "bench.embedded_concurrency.data", "seed", json.dumps(groups)))


def books(env: dict[str, str], *prefixes: str) -> dict:
    return json.loads(run_python(env, "-m", "bench.embedded_concurrency.data", "check", *prefixes))


def fire_withdrawals(port: int, sessions: list[str], amount: str = AMOUNT) -> list[tuple[int, float, bytes]]:
    """One POST to the withdrawal form per session, all released at once. Returns
    (status, seconds, first bytes of the body) per request; status 0 for a transport error."""
    barrier = threading.Barrier(len(sessions))
    results: list = [None] * len(sessions)

    def one(i: int, signed_in: str) -> None:
        session, account = signed_in.split(" ")  # as data.seed returns them
        csrf = secrets.token_hex(16)  # an unmasked 32-character CSRF secret, as the cookie holds it
        body = urlencode({"csrfmiddlewaretoken": csrf, "amount": amount, "currency": "EUR", "payout_account": account})
        headers = {
            "Cookie": f"sessionid={session}; csrftoken={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            started = time.monotonic()
            conn.request("POST", "/market/withdrawals/new", body, headers)
            response = conn.getresponse()
            results[i] = (response.status, time.monotonic() - started, response.read()[:400])
        except OSError as exc:
            results[i] = (0, 0.0, repr(exc).encode())
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def status_classes(results) -> Counter:
    """2xx/3xx/4xx, 503 (the clear "busy" refusal), 5xx (any other server error), error
    (no HTTP answer)."""
    return Counter(
        "error" if not status else "503" if status == 503 else f"{status // 100}xx" for status, _, _ in results
    )


def money_problems(book: dict, *, deposit: int = DEPOSIT_MINOR, amount: int = AMOUNT_MINOR) -> list[str]:
    problems = []
    for i, (available, held, count) in enumerate(
        zip(book["available"], book["held"], book["withdrawals"], strict=True)
    ):
        if available + held != deposit:
            problems.append(f"investor {i}: available {available} + held {held} != deposit {deposit}")
        if held != count * amount:
            problems.append(f"investor {i}: held {held} != {count} withdrawals x {amount}")
        if available < 0:
            problems.append(f"investor {i}: available {available} < 0")
    return problems


def run_variant(name: str, options: dict | None, n: int, keep: bool = False, fallback: bool = True) -> list[dict]:
    var_dir = Path(tempfile.mkdtemp(prefix=f"rwa-embedded-{name.replace('+', '-')}-"))
    own = options is None and fallback
    env = embedded_env(
        var_dir,
        settings="config.settings.local" if own else "bench.embedded_concurrency.settings",
        sqlite_options=options,
        **({} if fallback else {"BENCH_WITHOUT_FALLBACK": "1"}),
    )
    rows = []
    try:
        sessions = prepare(
            var_dir,
            env,
            [
                {"prefix": "many", "investors": n, "deposit_minor": DEPOSIT_MINOR},
                {"prefix": "one", "investors": 1, "deposit_minor": DEPOSIT_MINOR},
            ],
        )
        server = EmbeddedServer(env, var_dir / "runserver.log").start()
        try:
            outcomes = {
                "many": fire_withdrawals(server.port, list(sessions["many"].values())),
                "one": fire_withdrawals(server.port, list(sessions["one"].values()) * n),
            }
        finally:
            server.stop()
        book = books(env, "many", "one")
        log = server.log()
        for scenario, results in outcomes.items():
            recorded = sum(book[scenario]["withdrawals"])
            problems = money_problems(book[scenario]) + book["ledger_problems"]
            # A redirect is an answered request; a 503 rolled back. Another 5xx may come after
            # the commit (the session save), so it may or may not have written.
            answered = sum(1 for s, _, _ in results if 300 <= s < 400)
            unknown = sum(1 for s, _, _ in results if s >= 500 and s != 503)
            fits = n if scenario == "many" else DEPOSIT_MINOR // AMOUNT_MINOR  # ten fit into 100.00
            low, high = min(fits, answered), min(fits, answered + unknown)
            if not low <= recorded <= high:
                problems.append(f"{recorded} withdrawals recorded, {low}..{high} expected")
            rows.append(
                {
                    "variant": name,
                    "scenario": scenario,
                    "classes": status_classes(results),
                    "recorded": recorded,
                    "problems": problems,
                    "max_s": max(t for _, t, _ in results),
                }
            )
        rows[-1]["locked_in_log"] = log.count("database is locked")
    finally:
        if not keep:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"kept {var_dir}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--keep", action="store_true", help="keep each variant's var dir (database, server log)")
    parser.add_argument(
        "--without-fallback", action="store_true", help="leave out the 503 fallback (a lock timeout is then a 500)"
    )
    args = parser.parse_args()
    print(
        f"{args.requests} parallel withdrawal POSTs per scenario against runserver + SQLite (embedded settings"
        f"{', without the 503 fallback' if args.without_fallback else ''})\n"
    )
    print(
        f"{'variant':<28} {'scenario':<8} {'2xx':>4} {'3xx':>4} {'4xx':>4} {'503':>4} {'5xx':>4} {'err':>4} "
        f"{'recorded':>8} {'max s':>6}  books"
    )
    failed = False
    for name in args.variants.split(","):
        for row in run_variant(name, VARIANTS[name], args.requests, keep=args.keep, fallback=not args.without_fallback):
            c = row["classes"]
            failed |= bool(row["problems"]) or (name == "shipped" and c["5xx"] + c["error"] > 0)
            print(
                f"{name:<28} {row['scenario']:<8} {c['2xx']:>4} {c['3xx']:>4} {c['4xx']:>4} {c['503']:>4} {c['5xx']:>4} "
                f"{c['error']:>4} {row['recorded']:>8} {row['max_s']:>6.2f}  "
                + ("correct" if not row["problems"] else "; ".join(row["problems"][:3])),
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
