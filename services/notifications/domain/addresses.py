"""Which addresses a webhook delivery may connect to, pure: only globally reachable unicast.

Refused (the IANA special-purpose registries, and everything else that is not global):
- IPv4: `0.0.0.0/8` (this network, unspecified), `10.0.0.0/8`, `172.16.0.0/12`,
  `192.168.0.0/16` (private), `100.64.0.0/10` (shared address space, where cloud metadata
  services such as 100.100.100.200 live), `127.0.0.0/8` (loopback), `169.254.0.0/16`
  (link-local, metadata at 169.254.169.254), `192.0.0.0/24` (IETF protocol assignments),
  `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` (documentation), `192.88.99.0/24` (6to4
  relays), `198.18.0.0/15` (benchmarking), `224.0.0.0/4` (multicast), `240.0.0.0/4` (reserved,
  and the broadcast address).
- IPv6: everything outside global unicast `2000::/3` (so `::`, `::1`, unique-local `fc00::/7`,
  link-local `fe80::/10`, site-local `fec0::/10`, multicast `ff00::/8`, discard `100::/64`,
  SRv6 `5f00::/16`), and inside it `2001::/23` (IETF protocol assignments, Teredo `2001::/32`
  among them, whatever IPv4 address it embeds), `2001:db8::/32` and `3fff::/20`
  (documentation); `64:ff9b:1::/48` (local-use NAT64).
- An IPv6 address that carries an IPv4 one is judged by the IPv4 address it carries:
  IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96`, NAT64 `64:ff9b::/96` and 6to4
  `2002::/16`.
- By name, before any lookup: `localhost` and every name under `.localhost` (RFC 6761), in any
  letter case, with or without trailing dots.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = [
    "is_blocked",
    "is_local_name",
    "parse_address",
]

IPAddress = IPv4Address | IPv6Address

_BLOCKED_IPV4 = tuple(
    IPv4Network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_BLOCKED_IPV6 = tuple(
    IPv6Network(network)
    for network in ("2001::/23", "2001:db8::/32", "3fff::/20", "64:ff9b:1::/48")
)
# Prefixes whose last 32 bits are an IPv4 address (mapped ones have `ipv4_mapped`, 6to4 ones
# `sixtofour`).
_CARRYING_LAST_32_BITS = (IPv6Network("::/96"), IPv6Network("64:ff9b::/96"))


def parse_address(text: str) -> IPAddress | None:
    """The IP address `text` spells (an IPv6 zone, `%eth0`, is dropped), or None."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def is_blocked(address: IPAddress) -> bool:
    """Whether a delivery must not connect to `address` (not globally reachable unicast)."""
    if isinstance(address, IPv4Address):
        return any(address in network for network in _BLOCKED_IPV4)
    carried = _carried_ipv4(address)
    if carried is not None:
        return is_blocked(carried)
    return address not in _GLOBAL_UNICAST or any(address in network for network in _BLOCKED_IPV6)


def _carried_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _CARRYING_LAST_32_BITS):
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_local_name(host: str) -> bool:
    """`localhost` or a name under it: the machine itself, whatever a resolver answers."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")
