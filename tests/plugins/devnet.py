"""A devnet (algod-compatible ledger) for the test session, and the platform's role
accounts on it. The session's devnet is started once, on first use, in a temporary data
directory; settings point ALGOD_URL/ALGOD_TOKEN at it (and worker subprocesses inherit
them through tests/plugins/celery_worker.py)."""

import os

import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def devnet(tmp_path_factory):
    from devnet.testing import DevnetProcess

    proc = DevnetProcess(tmp_path_factory.mktemp("devnet")).start()
    previous = {name: getattr(settings, name) for name in ("ALGOD_URL", "ALGOD_TOKEN", "DEVNET_DATA_DIR")}
    settings.ALGOD_URL, settings.ALGOD_TOKEN, settings.DEVNET_DATA_DIR = proc.url, proc.token, str(proc.data_dir)
    os.environ.update(ALGOD_URL=proc.url, ALGOD_TOKEN=proc.token, DEVNET_DATA_DIR=str(proc.data_dir))
    try:
        yield proc
    finally:
        proc.stop()
        for name, value in previous.items():
            setattr(settings, name, value)
            os.environ.pop(name, None)


@pytest.fixture
def chain_platform(devnet, db):
    """Runs chain_bootstrap against the session devnet: role accounts created and funded.
    Returns {role: ChainAccount}."""
    from chain.bootstrap import chain_bootstrap

    _, states = chain_bootstrap()
    return {state.account.role: state.account for state in states}
