"""POSTing a signed notification to a webhook over HTTP (httpx), bounded by a timeout, to an
address that cannot be steered.

Every new connection resolves the host once, checks every address it got (`addresses`) and
connects to one of those very addresses: the check and the connection are one step in the
transport's network backend, so a DNS answer that changes between lookups (rebinding) cannot
send a delivery anywhere the check did not see. The URL itself is left as it is, so the
`Host` header, TLS SNI and certificate verification all keep to the webhook's host name. A
lookup that fails or answers nothing refuses the delivery (fail closed). Environment proxies
are not used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpcore
import httpx

from services.notifications.domain.addresses import is_blocked, is_local_name, parse_address

__all__ = [
    "Answer",
    "PinnedNetwork",
    "RefusedTarget",
    "Resolver",
    "client",
    "post",
    "system_resolver",
]

# The addresses a host name resolves to for a TCP port, in the resolver's order; raises OSError
# when the lookup fails.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


@dataclass(frozen=True)
class Answer:
    """How one POST went: the status code if one came back, else a short error code."""

    status_code: int | None
    error: str | None


class RefusedTarget(Exception):
    """A delivery refused before connecting; `code` is the attempt's recorded error."""

    def __init__(self, code: str, host: str) -> None:
        super().__init__(f"{code}: {host}")
        self.code = code


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer (getaddrinfo) for `host`, each address once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedNetwork(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses it resolved and checked itself.

    With `allow_private` (tests, `rapport dev`) nothing is refused, but the connection still
    goes to the address this lookup answered.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.network = network or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """Where a connection to `host` may go, in order; RefusedTarget when nowhere."""
        if parse_address(host) is not None:  # an IP literal: judged as it is, no lookup
            answered = [host]
        elif not self.allow_private and is_local_name(host):
            raise RefusedTarget("blocked_target", host)
        else:
            try:
                answered = list(await self.resolver(host, port))
            except OSError as error:
                raise RefusedTarget("unresolved_target", host) from error
        parsed = [address for address in map(parse_address, answered) if address is not None]
        if not parsed or len(parsed) < len(answered):
            raise RefusedTarget("unresolved_target", host)
        if not self.allow_private and any(is_blocked(address) for address in parsed):
            raise RefusedTarget("blocked_target", host)
        return answered

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first of the checked addresses that accepts one."""
        failed: httpcore.ConnectError | None = None
        for address in await self.addresses(host, port):
            try:
                return await self.network.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failed = error
        assert failed is not None  # `addresses` answers at least one address
        raise failed

    async def sleep(self, seconds: float) -> None:
        await self.network.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose network backend is `network`."""

    def __init__(self, network: PinnedNetwork, limits: httpx.Limits) -> None:
        verified = httpx.create_ssl_context(trust_env=False)  # certificates checked, by name
        super().__init__(verify=verified, limits=limits, trust_env=False)
        # httpx's transport takes no network backend: its pool is replaced by one that has it
        # (the unit tests prove every connection goes through `network`).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verified,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network,
        )


def client(
    timeout: float,
    *,
    allow_private: bool,
    max_connections: int = 100,
    resolver: Resolver = system_resolver,
    network: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """A client that never follows redirects (a 3xx is not a delivery) and connects only to
    checked addresses (`PinnedNetwork`; `resolver` and `network` are for tests)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    pinned = PinnedNetwork(allow_private=allow_private, resolver=resolver, network=network)
    return httpx.AsyncClient(
        transport=PinnedTransport(pinned, limits),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "rapport-notifications/1"},
    )


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Answer:
    """One attempt; the whole exchange (the lookup included) is bounded by `timeout`, the
    answer's body is not read. A refused target answers its code (`blocked_target`,
    `unresolved_target`) and is never connected to."""
    try:
        async with (
            asyncio.timeout(timeout),
            http.stream("POST", url, content=body, headers=headers) as response,
        ):
            code = response.status_code
    except RefusedTarget as refused:
        return Answer(None, refused.code)
    except (TimeoutError, httpx.TimeoutException):
        return Answer(None, "timeout")
    except httpx.ConnectError:
        return Answer(None, "connect_error")
    except httpx.HTTPError as error:
        return Answer(None, type(error).__name__)
    except (OSError, ValueError, httpx.InvalidURL) as error:
        return Answer(None, type(error).__name__)
    return Answer(code, None if 200 <= code < 300 else f"http_{code}")
