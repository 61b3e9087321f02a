"""Run a devnet in a subprocess for tests and local tooling.

    proc = DevnetProcess(tmp_path / "devnet").start()
    client = proc.client()
    fund(client, proc.genesis, some_address, 1_000_000)
    ...
    proc.stop()

Stable API: DevnetProcess(data_dir, port=None, token=DEFAULT_TOKEN, fsync=False) with
start(), stop(), kill(), url, token, genesis, client(), dispenser_private_key(); and
fund(client, genesis, address, amount) -> txid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from algosdk import mnemonic, transaction
from algosdk.atomic_transaction_composer import (
    AccountTransactionSigner,
    sign_transaction_with_signer,
)
from algosdk.v2client.algod import AlgodClient

from devnet.server import DEFAULT_TOKEN

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DevnetProcess:
    def __init__(
        self,
        data_dir,
        port: int | None = None,
        token: str = DEFAULT_TOKEN,
        *,
        fsync: bool = False,
        host: str = "127.0.0.1",
    ):
        self.data_dir = Path(data_dir)
        self.port = port
        self.token = token
        self.host = host
        self.fsync = fsync
        self.process: subprocess.Popen | None = None
        self.genesis: dict | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> DevnetProcess:
        """Spawn ``python -m devnet serve`` and wait until /health answers."""
        if self.port is None:
            self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "devnet",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--token",
            self.token,
        ]
        if self.fsync:
            cmd.append("--fsync")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.data_dir / "devnet.log", "ab")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        log_file.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devnet exited with {self.process.returncode}; see {self.data_dir / 'devnet.log'}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError(f"devnet did not answer /health within {START_TIMEOUT_SECONDS} s")
        self.genesis = json.loads((self.data_dir / "genesis.json").read_text())
        return self

    def _end(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash it (SIGKILL), as a power-cut-free crash test."""
        self._end(signal.SIGKILL)

    def client(self) -> AlgodClient:
        return AlgodClient(self.token, self.url)

    def dispenser_private_key(self) -> str:
        assert self.genesis is not None, "the devnet has not been started"
        return mnemonic.to_private_key(self.genesis["dispenser"]["mnemonic"])

    def __enter__(self) -> DevnetProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def fund(client: AlgodClient, genesis: dict, address: str, amount: int) -> str:
    """Pay ``amount`` microAlgos from the dispenser to ``address``; returns the txid once
    confirmed."""
    sender = genesis["dispenser"]["address"]
    private_key = mnemonic.to_private_key(genesis["dispenser"]["mnemonic"])
    params = client.suggested_params()
    txn = transaction.PaymentTxn(sender, params, address, amount)
    signed = sign_transaction_with_signer(txn, AccountTransactionSigner(private_key))
    txid = client.send_transaction(signed)
    transaction.wait_for_confirmation(client, txid, 4)
    return txid
