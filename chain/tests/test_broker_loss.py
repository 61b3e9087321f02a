"""The broker is lost (kill -9) while a real prefork worker settles and acknowledges
tasks, on Redis and on RabbitMQ: the worker survives, reconnects, and every row settles
exactly once. On Redis, config/kombu_redis.py turns kombu's AttributeError on a collected
channel into a connection error it handles, and the messages die with the broker (it keeps
nothing on disk), so the sweeper's re-enqueue finishes the job. On RabbitMQ the durable
queue keeps the unacknowledged messages across the kill and redelivers them: nothing has
to be re-sent. That difference is why docs/deploy recommends RabbitMQ in production.
Each test starts a private broker process; the machine's shared ones are never touched."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from chain.models import ChainTransaction
from chain.tasks import outbox_process_task

from .conftest import asset_payload, on_chain_units, process, request, transfer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateBroker:
    """A broker server in its own process group, so kill() is a kill -9 of all of it."""

    keeps_messages: bool
    url: str
    port: int

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def up(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        argv, env = self.command()
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self.up, 60, interval=0.2, message=f"{type(self).__name__} up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            wait_until(lambda: not port_open(self.port), 10, interval=0.1, message="broker port closed")


class PrivateRedis(PrivateBroker):
    keeps_messages = False  # started with no persistence, like the machine's own

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def command(self):
        return ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"], {}

    def up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class PrivateRabbit(PrivateBroker):
    """A second RabbitMQ node with its own name, ports, config and data directory (the
    machine's /etc/rabbitmq/rabbitmq.conf pins the shared node's listener to 5672)."""

    keeps_messages = True  # durable queue, persistent messages (Celery's defaults)

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text("ERL_EPMD_ADDRESS=127.0.0.1\n")

    def command(self):
        b = self.base
        return [RABBITMQ_SERVER], {
            "HOME": str(b),
            "RABBITMQ_NODENAME": f"rwatest{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
        }


@pytest.fixture(params=["redis", "rabbitmq"])
def private_broker(request, tmp_path):
    if request.param == "redis":
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        broker: PrivateBroker = PrivateRedis()
    else:
        if not os.path.exists(RABBITMQ_SERVER):
            pytest.skip("rabbitmq-server is not installed")
        broker = PrivateRabbit(tmp_path / "rabbitmq")
    broker.start()
    yield broker
    broker.kill()


def send(broker: PrivateBroker, rows) -> None:
    from config.celery import app

    with app.connection_for_write(url=broker.url) as conn:
        for row in rows:
            outbox_process_task.apply_async(args=[row.pk], connection=conn)


def test_worker_survives_a_broker_loss_while_acking_and_everything_settles_once(
    chain_platform, private_broker, tmp_path
):
    from tests.plugins.celery_worker import WorkerProcess, _worker_env

    treasury = chain_platform["treasury"].address
    created = process(request("asset_create", asset_payload(1_000)))
    asset = created.asset_id
    from accounts.tests.factories import UserFactory
    from chain import services

    investors = [services.investor_account_get_or_create(user=UserFactory()) for _ in range(12)]

    env = _worker_env()
    env.update(CELERY_BROKER_URL=private_broker.url)
    log_path = tmp_path / "worker.log"
    # Prefork, heartbeats on: the configuration that died in production.
    worker = WorkerProcess(log_path, env, options=("--pool", "prefork", "--concurrency", "4"))
    try:
        worker.start()
        rows = [transfer(asset, treasury, inv.address, 5) for inv in investors]
        send(private_broker, rows)

        # Kill the broker as soon as the first settlements are being acknowledged.
        def confirmed() -> int:
            return ChainTransaction.objects.filter(pk__in=[r.pk for r in rows], status="confirmed").count()

        wait_until(lambda: confirmed() >= 2, 60, interval=0.05, message="first confirmations")
        private_broker.kill()
        time.sleep(2)
        private_broker.start()  # Redis comes back empty; RabbitMQ with its durable queue

        wait_until(
            lambda: log_path.read_text(errors="replace").count("Connected to ") >= 2,
            60,
            message="worker reconnected",
        )
        assert worker.proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        assert "Unrecoverable error" not in log_path.read_text(errors="replace")

        if not private_broker.keeps_messages:
            # What the sweeper does for rows whose message was lost with the broker.
            unfinished = [r for r in rows if ChainTransaction.objects.get(pk=r.pk).status != "confirmed"]
            send(private_broker, unfinished)
        wait_until(lambda: confirmed() == len(rows), 90, interval=0.5, message="every row confirmed")

        for inv in investors:
            assert on_chain_units(inv.address, asset) == 5
        assert on_chain_units(treasury, asset) == 1_000 - 5 * len(investors)
        assert worker.proc.poll() is None
    finally:
        worker.stop()
