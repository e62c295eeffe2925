"""Which addresses a webhook delivery may connect to (`domain.addresses`), pure."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.addresses import is_blocked, is_local_name, parse_address

BLOCKED = [
    # IPv4
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",  # shared address space (RFC 6598)
    "100.100.100.200",  # a cloud metadata service inside it
    "100.127.255.255",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.9",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",  # site-local (deprecated, RFC 3879)
    "feff::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "100::1",
    "5f00::1",
    "2001:db8::1",
    "3fff::1",
    "2001:2::1",
    "64:ff9b:1::1",
    # IPv6 carrying a blocked IPv4
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.100.100.200",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "64:ff9b::127.0.0.1",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:7f00:1:ffff::1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2002:6464:64c8::1",  # 6to4 of 100.100.100.200
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:5db8:d822:8000:63bf:a2b7:29dd",  # Teredo with public addresses: refused whole
]

ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below 100.64.0.0/10
    "100.128.0.0",  # just above it
    "172.32.0.1",
    "192.0.3.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:81b::200e",
    "::ffff:93.184.216.34",
    "::93.184.216.34",
    "64:ff9b::808:808",
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
]


def address(text: str) -> IPv4Address | IPv6Address:
    parsed = parse_address(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize("text", BLOCKED)
def test_an_address_that_is_not_globally_reachable_unicast_is_blocked(text: str) -> None:
    assert is_blocked(address(text))


@pytest.mark.parametrize("text", ALLOWED)
def test_a_global_unicast_address_is_allowed(text: str) -> None:
    assert not is_blocked(address(text))


def test_the_low_severity_ranges_of_the_finding_are_blocked_at_their_edges() -> None:
    for text in ("100.64.0.0", "100.127.255.255", "fec0::", "feff:ffff::1", "2002:7f00::"):
        assert is_blocked(address(text)), text
    for text in ("100.63.255.255", "100.128.0.0", "2002:5db8:d822::"):
        assert not is_blocked(address(text)), text


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_address_python_calls_not_global_is_blocked(value: int) -> None:
    ip = IPv4Address(value)
    if not ip.is_global or ip.is_multicast:
        assert is_blocked(ip)


MAPPED = IPv6Network("::ffff:0:0/96")
# Where the special ranges are: random 128-bit numbers alone would almost never land there.
SPECIAL_IPV6 = [
    IPv6Network(network)
    for network in (
        "::/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001::/32",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]
IPV6 = st.one_of(
    st.integers(min_value=0, max_value=2**128 - 1).map(IPv6Address),
    st.builds(
        lambda network, bits: network.network_address + bits % network.num_addresses,
        st.sampled_from(SPECIAL_IPV6),
        st.integers(min_value=0, max_value=2**128 - 1),
    ),
)


@given(IPV6)
def test_every_ipv6_address_python_calls_not_global_is_blocked(ip: IPv6Address) -> None:
    if ip not in MAPPED and (not ip.is_global or ip.is_multicast):
        assert is_blocked(ip)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_an_ipv6_address_carrying_an_ipv4_one_is_judged_as_that_ipv4_address(value: int) -> None:
    ipv4 = IPv4Address(value)
    for carrier in (
        IPv6Address(f"::ffff:{ipv4}"),
        IPv6Address(f"64:ff9b::{ipv4}"),
        IPv6Address((0x2002 << 112) | (value << 80)),
    ):
        assert is_blocked(carrier) == is_blocked(ipv4), carrier


def test_text_that_is_no_address_parses_as_none() -> None:
    assert parse_address("example.org") is None
    assert parse_address("127.1") is None
    assert parse_address("") is None


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "LOCALHOST.", "localhost..", "LocalHost", "a.localhost."]
)
def test_localhost_is_the_machine_itself_in_any_case_and_with_trailing_dots(host: str) -> None:
    assert is_local_name(host)


@pytest.mark.parametrize("host", ["localhost.example.org", "notlocalhost", "example.org."])
def test_a_name_merely_containing_localhost_is_not_local(host: str) -> None:
    assert not is_local_name(host)
