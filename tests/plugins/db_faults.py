"""Database faults for tests: end a PostgreSQL backend from another connection, as a
database restart or a proxy dropping idle connections would (`pg_terminate_backend`)."""

import time

import psycopg
from django.db import connection


def _dsn() -> str:
    db = connection.settings_dict
    return f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"


def terminate_backends(pids: list[int] | None = None, *, timeout: float = 10) -> list[int]:
    """Terminate these backends (default: every one on the test database but this
    thread's, e.g. a worker's) and wait until they are gone. Returns the pids terminated."""
    connection.ensure_connection()
    own = connection.connection.info.backend_pid
    with psycopg.connect(_dsn(), autocommit=True) as admin:
        if pids is None:
            pids = [
                row[0]
                for row in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND pid <> %s",
                    [own],
                )
            ]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + timeout
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]).fetchall():
            if time.monotonic() > deadline:
                raise AssertionError(f"backends {pids} still alive after {timeout}s")
            time.sleep(0.05)
    return pids


def terminate_this_thread_connection() -> int:
    """Kill the backend behind Django's default connection of this thread."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    terminate_backends([pid])
    return pid
