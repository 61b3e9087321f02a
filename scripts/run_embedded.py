"""`make run`: start devnet (the development ledger, data in var/devnet), migrate the
embedded database, seed demo data, create and fund the platform's chain accounts, then
run the web server and a Celery worker (with beat) side by side, each restarted with a
capped back-off when it exits (config/supervisor.py), and seed the demo order book once
the worker runs (seed_demo_book: it needs settlements on chain), then the market-integrity
demo (seed_demo_integrity) and the distributions demo (seed_demo_distributions). Ctrl-C
stops everything.

A custody master key is generated once into var/custody-master.keys unless
CUSTODY_MASTER_KEYS or CUSTODY_MASTER_KEY_FILE is given. ALGOD_URL set in the
environment means "use that node" (LocalNet, TestNet): devnet is then not started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.supervisor import Supervisor, stop_all  # noqa: E402  (needs ROOT on the path)

PY = sys.executable
HOST = os.environ.get("RWA_HOST", "127.0.0.1")
PORT = os.environ.get("RWA_PORT", "8000")
DEVNET_PORT = os.environ.get("RWA_DEVNET_PORT", "4001")
DEVNET_TOKEN = "a" * 64  # devnet's default, the well-known LocalNet token


def public_base_url(environ) -> str:
    """The site's absolute address for links in mails and the asset pages' ARC-3 link
    (settings.PUBLIC_BASE_URL, the one setting they are built from): PUBLIC_BASE_URL when
    given, else where this runner serves, RWA_HOST and RWA_PORT (a wildcard host is
    reached on 127.0.0.1)."""
    if environ.get("PUBLIC_BASE_URL"):
        return environ["PUBLIC_BASE_URL"]
    host = environ.get("RWA_HOST", "127.0.0.1")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{environ.get('RWA_PORT', '8000')}"


def master_key_file(var: Path) -> None:
    if os.environ.get("CUSTODY_MASTER_KEYS") or os.environ.get("CUSTODY_MASTER_KEY_FILE"):
        return
    path = var / "custody-master.keys"
    if not path.exists():
        import base64
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"local-1:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
        print(f"Generated a local custody master key in {path} (keep it: it unlocks var/db.sqlite3's keys).")
    os.environ["CUSTODY_MASTER_KEY_FILE"] = str(path)


def start_devnet(var: Path) -> subprocess.Popen | None:
    if os.environ.get("ALGOD_URL"):
        return None
    data_dir = var / "devnet"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "devnet.log", "ab")
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "devnet",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            DEVNET_PORT,
            "--data-dir",
            str(data_dir),
            "--token",
            DEVNET_TOKEN,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{DEVNET_PORT}"
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"devnet exited with {proc.returncode}; see {data_dir / 'devnet.log'}")
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit(f"devnet did not start on {url}; see {data_dir / 'devnet.log'}")
    os.environ.update(ALGOD_URL=url, ALGOD_TOKEN=DEVNET_TOKEN, DEVNET_DATA_DIR=str(data_dir))
    print(f"devnet: {url} (data in {data_dir})", flush=True)
    return proc


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Before seeding: the demo assets' ARC-3 URLs, minted on chain, start with it too.
    os.environ["PUBLIC_BASE_URL"] = public_base_url(os.environ)
    var = ROOT / "var"
    for sub in ("broker/queue", "broker/processed", "broker/control", "cache", "mail", "private"):
        (var / sub).mkdir(parents=True, exist_ok=True)
    master_key_file(var)
    devnet = start_devnet(var)
    try:
        manage("migrate", "--noinput", "-v", "0")
        manage("seed_demo")
        manage("chain_bootstrap")
        manage("seed_demo_assets")  # approved here, minted on devnet by the worker below
        manage("seed_demo_market")  # demo cash; offerings open when the worker confirms each mint
        manage("market_check")  # the secondary market's invariants (docs/trading.md); exits 1 naming the rows
        manage("seed_demo_api")  # prints the API docs URL and a demo-only read token (docs/api.md)
    except BaseException:
        if devnet is not None:
            devnet.terminate()
        raise

    commands = {
        "web": [PY, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-B",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--schedule",
            str(var / "celerybeat-schedule"),
        ],
    }
    supervisors = [Supervisor(name, cmd, cwd=ROOT) for name, cmd in commands.items()]
    for sup in supervisors:
        sup.start()
    if devnet is not None:
        log = open(var / "devnet" / "devnet.log", "ab")  # noqa: SIM115  (kept open for restarts)
        devnet_sup = Supervisor("devnet", devnet.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        devnet_sup.adopt(devnet)
        supervisors.append(devnet_sup)  # stopped last: list order is stop order
    print(
        f"\nRWA Marketplace: http://{HOST}:{PORT}/  (back office: /backoffice/)  Ctrl-C stops everything.\n", flush=True
    )
    # The demo order book needs the worker (mint, primary purchases and trades settle on
    # devnet), so it is seeded now, in the background; it waits for each step on chain
    # and ends with market_check. Idempotent: a restart replays the same orders. Then,
    # in the same background chain, the market-integrity demo (seed_demo_integrity: a
    # book in auction mode and a price history, docs/market-integrity.md "Demo").
    seeders = iter(["seed_demo_integrity", "seed_demo_distributions"])
    seeding = subprocess.Popen([PY, "manage.py", "seed_demo_book"], cwd=ROOT, start_new_session=True)

    def stop(*_):
        if seeding.poll() is None:
            seeding.terminate()
            seeding.wait(timeout=10)
        stop_all(supervisors)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    # Ctrl-C even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # A child that dies (a worker killed by a broker loss, devnet crashing) is started
        # again with a capped exponential back-off, and the console says so.
        while True:
            for sup in supervisors:
                sup.poll()
            if seeding.poll() is not None and (seeder := next(seeders, None)):
                seeding = subprocess.Popen([PY, "manage.py", seeder], cwd=ROOT, start_new_session=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
