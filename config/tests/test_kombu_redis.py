"""config/kombu_redis.py: a Redis channel used after Celery collected its connection
raises a connection error (which Celery handles) instead of AttributeError (which killed
the worker: kombu#582/#970 class)."""

import pytest
from django.conf import settings
from kombu import Connection

from config import kombu_redis


@pytest.fixture
def collected_channel():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker")
    conn = Connection(settings.CELERY_BROKER_URL)
    channel = conn.channel()
    transport = conn.transport
    # What Celery's consumer does on a broker loss: close the channels, drop the transport's client.
    conn.collect()
    assert channel._pool is None and transport.client is None
    yield conn, channel
    conn.release()


def test_the_guard_is_installed_with_the_celery_app():
    from kombu.transport.redis import Channel

    assert kombu_redis.install() is True
    assert getattr(Channel._connparams, kombu_redis._PATCHED_ATTR, False)


def test_without_the_guard_kombu_raises_attribute_error(collected_channel):
    _, channel = collected_channel
    unpatched = type(channel)._connparams.__wrapped__

    with pytest.raises(AttributeError, match="hostname|client"):
        unpatched(channel)


def test_ack_and_restore_on_a_collected_channel_raise_a_connection_error(collected_channel):
    conn, channel = collected_channel

    with pytest.raises(conn.connection_errors, match="after its broker connection was closed"):
        channel.qos.ack("some-delivery-tag")
    with pytest.raises(conn.connection_errors):
        channel.qos.restore_by_tag("some-delivery-tag")
    assert not isinstance(kombu_redis._closed_connection_error(__import__("redis")), AttributeError)
