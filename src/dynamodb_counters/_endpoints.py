"""Endpoint URLs given on the command line: checked once, loopback told apart, passwords hidden.

The CLI and the bench send DynamoDB Local's dummy credentials, never the user's own, to a
plain-HTTP endpoint on this machine: whatever listens on a local port would otherwise receive
requests signed with real credentials. "On this machine" is decided on the address, in every
spelling a resolver accepts for it (``127.1``, ``2130706433``, ``0x7f000001``,
``[::ffff:127.0.0.1]``, ``0.0.0.0``, ``[::]``, ``localhost``), not on the text.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlparse

from .errors import InvalidInput

__all__ = ["check_endpoint", "is_local_host", "redact"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@\"']*@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` spells, in any form ``getaddrinfo`` takes for a literal."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone id names no address
    except ValueError:
        pass
    try:
        # inet_aton's legacy forms (127.1, 2130706433, 0x7f.0.0.1): what a resolver accepts.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def is_local_host(host: str) -> bool:
    """True for a host that names this machine: loopback or unspecified, in any spelling."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and (address.is_loopback or address.is_unspecified)


def check_endpoint(url: str | None, *, flag: str = "--endpoint-url") -> tuple[str | None, bool]:
    """Check an endpoint URL; returns it and whether it is plain HTTP to this machine (then
    dummy credentials go with it).

    Raises:
        InvalidInput: not an http(s) URL with a host, or a port out of range (the message
            shows the URL with its password hidden).
    """
    if url is None:
        return None, False
    shown = redact(url)
    try:
        parts = urlparse(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise InvalidInput(f"{flag} {shown!r} is not a valid URL: {redact(str(exc))}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"{flag} {shown!r} is not a valid URL: give http(s)://HOST[:PORT], "
            "e.g. http://127.0.0.1:8000"
        )
    return url, parts.scheme == "http" and is_local_host(host)
