"""What a webhook registration may be, pure: how many a recipient may have and which URLs are
accepted.

A URL is accepted when it is an absolute `http` or `https` URL of at most `MAX_URL_LENGTH`
characters, with no whitespace or control character anywhere, no credentials (`user:pass@`:
they would be stored in plaintext and sent to the receiver), a host that is a valid host name
(IDNA 2008, as httpx encodes it when it delivers) or an IP literal (a dotted-quad IPv4
address, or an IPv6 address in brackets without a zone), and a port, if any, from 1 to 65535.
Whether the host is inside a private network is for delivery to decide (`addresses`): it is
resolved when a delivery connects, not here.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import idna

__all__ = [
    "MAX_URL_LENGTH",
    "MAX_WEBHOOKS_PER_RECIPIENT",
    "url_problem",
]

MAX_WEBHOOKS_PER_RECIPIENT = 20
MAX_URL_LENGTH = 2000

# Unicode categories no URL may carry: controls, format characters (zero-width, bidi), and
# separators (every space, line and paragraph separator).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_PORT = re.compile(r"[0-9]{1,5}")
# A last label that reads as a number (`127.1`, `2130706433`, `0x7f.1`): resolvers take such
# names for IPv4 addresses, so they are accepted only as a dotted quad.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook's address, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(unicodedata.category(character) in _FORBIDDEN_CATEGORIES for character in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not url[len(parts.scheme) :].startswith("://"):
        return "must be an absolute http or https URL"
    if "@" in parts.netloc:
        return (
            "must not contain credentials (user:password@): they would be stored and sent in"
            " plaintext; receivers authenticate deliveries by their signature"
        )
    host, separator, port = _split_authority(parts.netloc)
    if host is None:
        return "has an invalid IPv6 address (an address in brackets, without a zone)"
    if separator and not _valid_port(port):
        return "has an invalid port (it must be a number from 1 to 65535)"
    return _host_problem(host)


def _split_authority(netloc: str) -> tuple[str | None, str, str]:
    """(host, ":" or "", port) of an authority without userinfo; host None for a bracketed
    literal that is not an IPv6 address."""
    if netloc.startswith("["):
        literal, bracket, rest = netloc[1:].partition("]")
        if not bracket or "%" in literal or not _is_ipv6(literal):
            return None, "", ""
        if rest and not rest.startswith(":"):
            return None, "", ""
        return f"[{literal}]", rest[:1], rest[1:]
    host, separator, port = netloc.partition(":")
    return host, separator, port


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _valid_port(port: str) -> bool:
    return _PORT.fullmatch(port) is not None and 1 <= int(port) <= 65535


def _host_problem(host: str) -> str | None:
    if not host:
        return "must name a host"
    if host.startswith("["):
        return None  # an IPv6 literal, checked when the authority was split
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return None
    name = host.lower()
    labels = name.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "has an invalid IPv4 address (an IPv4 host must be four decimal numbers)"
    try:
        idna.encode(name)
    except idna.IDNAError:
        return "has an invalid host name"
    return None
