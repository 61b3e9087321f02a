"""The SSRF guard: non-public addresses are refused when the URL is saved and when it is
sent (after resolving the name), and the connection goes to the address that was checked."""

import socket

import pytest

from webhooks import transport


@pytest.fixture
def guard_on(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    def no_connection(*args, **kwargs):
        raise AssertionError("the guard let a connection through")

    monkeypatch.setattr(transport.socket, "create_connection", no_connection)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://0.0.0.0/hook",
        "http://93.184.215.14/hook",  # public, but plain http
    ],
)
def test_non_public_or_plain_http_urls_are_refused_when_saved_and_when_sent(guard_on, url):
    assert transport.url_refusal(url) is not None
    with pytest.raises(transport.Refused):
        transport.post(url, body=b"{}", headers={}, timeout=1)


def test_a_name_resolving_to_loopback_is_refused_at_send_time(guard_on):
    with pytest.raises(transport.Refused, match="non-public"):
        transport.resolve("localhost", 443)


def test_a_public_looking_name_that_resolves_to_a_private_address_is_refused(guard_on, monkeypatch):
    def rebinding(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(transport.socket, "getaddrinfo", rebinding)
    assert transport.url_refusal("https://hooks.example.com/x") is None  # the name itself looks fine
    with pytest.raises(transport.Refused, match="10.1.2.3"):
        transport.post("https://hooks.example.com/x", body=b"{}", headers={}, timeout=1)


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
    ],
)
def test_address_rule(address, public):
    assert transport.address_public(address) is public


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(settings, monkeypatch, receiver):
    """Pinning: the name is resolved once, the socket connects to that address, and the
    Host header still names the URL's host."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    port = receiver.server.server_address[1]
    answers = iter(["127.0.0.1", "10.9.9.9"])  # a second lookup of the name would get another address
    real = socket.getaddrinfo

    def resolver(host, p, *args, **kwargs):
        if host != "hooks.example.com":  # the connection's own lookup of the address literal
            return real(host, p, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), p))]

    monkeypatch.setattr(transport.socket, "getaddrinfo", resolver)
    status = transport.post(f"http://hooks.example.com:{port}/in", body=b"{}", headers={}, timeout=2)
    assert status == 200
    assert receiver.requests[0].headers["Host"] == f"hooks.example.com:{port}"


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 10_000 + ".com/",
        "https://example.com/\x00",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://example.com/",
        "https://user:secret@example.com/",
        "https://exa mple.com/",
        "https://bücher.example/",
        "",
        None,
    ],
)
def test_hostile_urls_are_refused(url):
    assert transport.url_refusal(url) is not None
