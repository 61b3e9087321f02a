"""Work around a kombu Redis-transport bug that killed the worker on a broker loss.

kombu (5.7.0 and, in the same class, since 3.x: celery/kombu#582, #970) lets a Redis
channel outlive its connection. Reproduced here (chain/tests/test_broker_loss.py without
this guard: 1 run in 5): on a broker loss Celery 5.7.0's
`Consumer.on_connection_error_after_connected` first calls `connection.collect()`, which
tries to close the channels (the Redis one fails half-way: the broker is gone), drops the
channel's pool and sets the transport's `client` to None; it then calls
`ignore_errors(connection, connection.close)`, which closes the default channel again, and
`Channel.close` -> `QoS.restore_unacked_once` -> `restore_unacked` asks for a new pool:
`Channel._connparams` reads `self.connection.client.hostname`:

    AttributeError: 'NoneType' object has no attribute 'hostname'

An AttributeError is not one of the transport's connection errors, so `ignore_errors`
lets it through; it reaches the worker's blueprint and the worker exits ("Unrecoverable
error"). Nothing settles until someone restarts it. Acking a message on such a channel
(`QoS.ack` -> `_remove_from_indices`) takes the same path.

The fix: a channel whose connection is gone raises redis' ConnectionError, the error
kombu and Celery already handle on a broker loss (logged as "Couldn't ack", the consumer
reconnects). The message stays in Redis' unacked index and comes back after the
visibility timeout; the outbox sweeper re-enqueues its row sooner. Applied once, from
config/__init__.py, in every process that loads the Celery app."""

from typing import Any

_PATCHED_ATTR = "_rwa_closed_connection_guard"


def _closed_connection_error(redis_module: Any) -> Exception:
    return redis_module.exceptions.ConnectionError(
        "kombu redis channel used after its broker connection was closed (celery/kombu#582, #970)"
    )


def install() -> bool:
    """Wrap kombu.transport.redis.Channel._connparams; True when (already) installed,
    False when redis-py is missing (no Redis transport to fix)."""
    from kombu.transport import redis as kombu_redis

    if kombu_redis.redis is None:
        return False
    channel_cls = kombu_redis.Channel
    original = channel_cls._connparams
    if getattr(original, _PATCHED_ATTR, False):
        return True

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise _closed_connection_error(kombu_redis.redis)
        return original(self, asynchronous=asynchronous)

    setattr(_connparams, _PATCHED_ATTR, True)
    setattr(_connparams, "__wrapped__", original)  # noqa: B010
    setattr(channel_cls, "_connparams", _connparams)  # noqa: B010  (a method replaced on purpose)
    return True
