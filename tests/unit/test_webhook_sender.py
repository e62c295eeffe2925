"""Webhook delivery that cannot be steered (`adapters.sender`): a fake resolver and a network
backend that records what it was asked to connect to, through httpx's own client and pool.
Nothing here opens a socket."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import pytest

from services.notifications.adapters import sender

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
PUBLIC = "93.184.216.34"


@dataclass
class Resolver:
    """Answers `answers[n]` to the n-th lookup (the last one from then on); records lookups."""

    answers: list[list[str]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


def lying() -> Resolver:
    """A public address on the first lookup, loopback on every later one (DNS rebinding)."""
    return Resolver([[PUBLIC], ["127.0.0.1"]])


class FailingResolver(Resolver):
    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class HangingResolver(Resolver):
    async def __call__(self, host: str, port: int) -> Sequence[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Stream(httpcore.AsyncMockStream):
    """A connection answering `buffer`, recording what was written and how TLS started."""

    def __init__(self, buffer: list[bytes], network: Network) -> None:
        super().__init__(buffer)
        self.network = network

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.network.written.append(buffer)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.network.tls.append((ssl_context, server_hostname))
        return self


class Network(httpcore.AsyncMockBackend):
    """The network under the pinned backend: records every connection it was asked for and
    refuses the addresses in `refusing`."""

    def __init__(self, answer: bytes = OK, refusing: Iterable[str] = ()) -> None:
        super().__init__([answer])
        self.refusing = set(refusing)
        self.connected: list[tuple[str, int]] = []
        self.written: list[bytes] = []
        self.tls: list[tuple[ssl.SSLContext, str | None]] = []

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        if host in self.refusing:
            raise httpcore.ConnectError(f"{host} refused the connection")
        self.connected.append((host, port))
        return Stream(list(self._buffer), self)


async def deliver(
    url: str,
    resolver: Resolver,
    network: Network,
    *,
    allow_private: bool = False,
    times: int = 1,
    timeout: float = 5.0,
) -> list[sender.Answer]:
    async with sender.client(
        timeout, allow_private=allow_private, resolver=resolver, network=network
    ) as http:
        return [
            await sender.post(http, url, b"{}", {"Content-Type": "application/json"}, timeout)
            for _ in range(times)
        ]


async def test_a_delivery_connects_to_the_address_its_one_lookup_answered() -> None:
    resolver, network = lying(), Network()
    [answer] = await deliver("https://hooks.example.org/h", resolver, network)
    assert answer == sender.Answer(200, None)
    assert resolver.asked == [("hooks.example.org", 443)]
    assert network.connected == [(PUBLIC, 443)]


async def test_a_rebinding_answer_on_a_later_lookup_is_refused_and_never_connected_to() -> None:
    resolver, network = lying(), Network()
    first, second = await deliver("https://hooks.example.org/h", resolver, network, times=2)
    assert first == sender.Answer(200, None)
    assert second == sender.Answer(None, "blocked_target")
    assert len(resolver.asked) == 2  # the first connection closed: the second looked up again
    assert network.connected == [(PUBLIC, 443)]


async def test_tls_sni_certificate_checks_and_the_host_header_keep_to_the_webhook_s_name() -> None:
    network = Network()
    await deliver("https://Hooks.Example.org/h", lying(), network)
    [(context, server_hostname)] = network.tls
    assert server_hostname == "hooks.example.org"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    request = b"".join(network.written)
    assert b"\r\nHost: hooks.example.org\r\n" in request
    assert PUBLIC.encode() not in request


async def test_a_lookup_that_fails_refuses_the_delivery_and_never_connects() -> None:
    resolver, network = FailingResolver([]), Network()
    [answer] = await deliver("https://hooks.example.org/h", resolver, network)
    assert answer == sender.Answer(None, "unresolved_target")
    assert resolver.asked and network.connected == []


async def test_a_lookup_that_answers_nothing_refuses_the_delivery() -> None:
    network = Network()
    [answer] = await deliver("https://hooks.example.org/h", Resolver([[]]), network)
    assert answer == sender.Answer(None, "unresolved_target") and network.connected == []


async def test_a_name_with_any_private_address_among_its_answers_is_refused() -> None:
    network = Network()
    for private in ("10.0.0.7", "100.100.100.200", "fec0::1", "2002:7f00:1::", "::ffff:127.0.0.1"):
        resolver = Resolver([[PUBLIC, private]])
        [answer] = await deliver("http://hooks.example.org/h", resolver, network)
        assert answer == sender.Answer(None, "blocked_target"), private
    assert network.connected == []


async def test_an_ip_literal_is_judged_as_it_is_without_a_lookup() -> None:
    resolver, network = lying(), Network()
    for url in ("http://127.0.0.1:9/h", "http://[::1]/h", "http://[::ffff:169.254.169.254]/"):
        [answer] = await deliver(url, resolver, network)
        assert answer == sender.Answer(None, "blocked_target"), url
    [answer] = await deliver(f"http://{PUBLIC}:8080/h", resolver, network)
    assert answer == sender.Answer(200, None)
    assert resolver.asked == [] and network.connected == [(PUBLIC, 8080)]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "LocalHost", "api.localhost."])
async def test_localhost_in_any_case_or_with_a_trailing_dot_is_refused_before_a_lookup(
    host: str,
) -> None:
    resolver, network = Resolver([[PUBLIC]]), Network()
    [answer] = await deliver(f"http://{host}/h", resolver, network)
    assert answer == sender.Answer(None, "blocked_target")
    assert resolver.asked == [] and network.connected == []


async def test_allowing_private_targets_still_connects_to_the_address_first_answered() -> None:
    resolver, network = Resolver([["127.0.0.1"], ["10.9.9.9"]]), Network()
    [answer] = await deliver("http://localhost:8099/h", resolver, network, allow_private=True)
    assert answer == sender.Answer(200, None)
    assert resolver.asked == [("localhost", 8099)]
    assert network.connected == [("127.0.0.1", 8099)]


async def test_when_the_first_checked_address_refuses_the_next_checked_one_is_tried() -> None:
    other = "2606:4700:4700::1111"
    network = Network(refusing=[PUBLIC])
    [answer] = await deliver("http://hooks.example.org/h", Resolver([[PUBLIC, other]]), network)
    assert answer == sender.Answer(200, None) and network.connected == [(other, 80)]
    [answer] = await deliver("http://hooks.example.org/h", Resolver([[PUBLIC]]), network)
    assert answer == sender.Answer(None, "connect_error")


async def test_a_redirect_is_answered_as_it_is_and_not_followed() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n"
    network = Network(answer=moved)
    [answer] = await deliver("http://hooks.example.org/h", lying(), network)
    assert answer == sender.Answer(302, "http_302")
    assert network.connected == [(PUBLIC, 80)]


async def test_a_lookup_that_never_answers_ends_as_a_timeout_and_never_connects() -> None:
    network = Network()
    answers = await deliver(
        "http://hooks.example.org/h", HangingResolver([]), network, timeout=0.01
    )
    assert answers == [sender.Answer(None, "timeout")] and network.connected == []


async def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://10.0.0.1:3128")
    network = Network()
    [answer] = await deliver("https://hooks.example.org/h", lying(), network)
    assert answer == sender.Answer(200, None) and network.connected == [(PUBLIC, 443)]
