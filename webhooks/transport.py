"""The one module that sends webhook requests, with the SSRF guard.

`url_refusal` checks a URL when it is saved (scheme, length, characters, no credentials, no
literal non-public address). `post` resolves the host when it sends, refuses the request
if any address the name resolves to is not public (private, loopback, link-local,
multicast, reserved, unspecified, shared address space, and IPv4 hidden in IPv6 forms),
then connects to the address it checked, so a name that changes its answer between the
check and the connection (DNS rebinding) cannot redirect it. The Host header and, for
https, the TLS server name (SNI and certificate check) stay the URL's host name.
Redirects are never followed (http.client does not), the timeout applies to connecting
and to each read, and at most RESPONSE_BYTES of the answer are read.

settings.WEBHOOKS_ALLOW_PRIVATE (test and local settings only) lifts the address rule and
allows http:// so tests and the demo can use a receiver on 127.0.0.1."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_URL_LENGTH = 2000
RESPONSE_BYTES = 1024


class Refused(Exception):
    """The request was not sent: the URL or the address it resolves to is not allowed."""


def address_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_public(str(embedded))
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _schemes() -> tuple[str, ...]:
    return ("https", "http") if settings.WEBHOOKS_ALLOW_PRIVATE else ("https",)


def url_refusal(raw) -> str | None:
    """Why this URL cannot be a webhook endpoint, or None."""
    if not isinstance(raw, str) or not raw:
        return "Enter the URL of your endpoint."
    if len(raw) > MAX_URL_LENGTH:
        return f"Use a URL of at most {MAX_URL_LENGTH} characters."
    if any(ord(c) < 33 or ord(c) == 127 for c in raw):
        return "The URL may not contain spaces or control characters."
    if not raw.isascii():
        return "Write the URL in ASCII: an international domain name in its xn-- form, other characters %-encoded."
    parts = urlsplit(raw)
    if parts.scheme.lower() not in _schemes():
        return "Use an https:// URL."
    try:
        URLValidator(schemes=list(_schemes()))(raw)
        port = parts.port
    except (ValidationError, ValueError):
        return "Enter a valid URL."
    if parts.username is not None or parts.password is not None:
        return "The URL may not contain a user name or password."
    if not parts.hostname:
        return "Enter a valid URL."
    if port == 0:
        return "Enter a valid URL."
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if (literal is not None and not address_public(str(literal))) or parts.hostname.rstrip(".").lower() in (
            "localhost",
            "localhost.localdomain",
        ):
            return "The URL must point to a public internet address."
    return None


def resolve(host: str, port: int) -> str:
    """The address to connect to; Refused when the name does not resolve or any of its
    addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve ({exc})") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if not address_public(address):
                raise Refused(f"{host} resolves to a non-public address ({address})")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to `url`; the response's status code. Raises Refused, or OSError /
    http.client.HTTPException when the connection or the exchange fails."""
    refusal = url_refusal(url)
    if refusal is not None:
        raise Refused(refusal)
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    address = resolve(host, port)
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    conn = connection_class(host, port, address=address, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(RESPONSE_BYTES)
        return response.status
    finally:
        conn.close()
