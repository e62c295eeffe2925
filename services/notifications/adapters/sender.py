"""POSTing a signed notification to a webhook over HTTP (httpx), bounded by a timeout."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True)
class Answer:
    """How one POST went: the status code if one came back, else a short error code."""

    status_code: int | None
    error: str | None


def client(timeout: float, *, max_connections: int = 100) -> httpx.AsyncClient:
    """A client that never follows redirects (a 3xx is not a delivery)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        headers={"User-Agent": "rapport-notifications/1"},
    )


def is_public(address: str) -> bool:
    """Whether an IP address is a public, routable one (not loopback, private, link-local...)."""
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def resolves_to_public_addresses_only(url: str) -> bool:
    """Whether every address the URL's host resolves to is public (no SSRF into the network
    the service runs in). A host that does not resolve is left to the POST to fail."""
    parts = urlsplit(url)
    if parts.hostname is None:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port)
    except OSError:
        return True
    return all(is_public(str(info[4][0])) for info in infos)


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    *,
    allow_private: bool = False,
) -> Answer:
    """One attempt; the whole exchange is bounded by `timeout`, the answer's body is not read.
    Targets inside private networks are refused (`blocked_target`) unless `allow_private`."""
    try:
        async with asyncio.timeout(timeout):
            if not allow_private and not await resolves_to_public_addresses_only(url):
                return Answer(None, "blocked_target")
            async with http.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
    except (TimeoutError, httpx.TimeoutException):
        return Answer(None, "timeout")
    except httpx.ConnectError:
        return Answer(None, "connect_error")
    except httpx.HTTPError as error:
        return Answer(None, type(error).__name__)
    except (OSError, ValueError, httpx.InvalidURL) as error:
        return Answer(None, type(error).__name__)
    return Answer(code, None if 200 <= code < 300 else f"http_{code}")
