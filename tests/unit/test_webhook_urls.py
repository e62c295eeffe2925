"""The URL rules of a webhook registration (`domain.webhooks.url_problem`), pure."""

from __future__ import annotations

import httpx
import pytest

from services.notifications.domain.webhooks import MAX_URL_LENGTH, url_problem

ACCEPTED = [
    "https://hooks.example.org/rapport",
    "http://hooks.example.org:8080/a/b?c=d#e",
    "HTTPS://HOOKS.EXAMPLE.ORG/upper-case-scheme-and-host",
    "https://hooks.example.org./trailing-dot",
    "https://bücher.example/unicode-host",
    "https://xn--bcher-kva.example/a-label",
    "http://93.184.216.34/ipv4",
    "http://127.0.0.1:18099/loopback-is-for-delivery-to-refuse",
    "http://[2606:4700:4700::1111]:443/ipv6",
    "http://[::1]/",
    "http://x.test:080/leading-zero-port",
    "https://a.example/" + "p" * (MAX_URL_LENGTH - len("https://a.example/")),
]

REFUSED = [
    ("ftp://example.org/x", "http or https"),
    ("javascript://example.org/%0aalert(1)", "http or https"),
    ("http:example.org/no-authority", "http or https"),
    ("example.org/hook", "http or https"),
    ("http:///no-host", "must name a host"),
    ("http://127.0.0.1:18099:99/", "invalid port"),
    ("http://x.test:0/", "invalid port"),
    ("http://x.test:65536/", "invalid port"),
    ("http://x.test:/", "invalid port"),
    ("http://x.test:8o/", "invalid port"),
    ("http://x.test:+80/", "invalid port"),
    ("http://xn--/", "invalid host name"),
    ("http://xn--zz.example/", "invalid host name"),
    ("http://-leading-hyphen.example/", "invalid host name"),
    ("http://under_score.example/", "invalid host name"),
    ("http://a..b.example/", "invalid host name"),
    ("http://./", "invalid host name"),
    ("http://%31%32%37.0.0.1/", "invalid IPv4"),
    ("http://%6cocalhost/", "invalid host name"),
    ("http://" + "a" * 64 + ".example/", "invalid host name"),
    ("http://" + "a." * 127 + "example/", "invalid host name"),
    ("http://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org/fullwidth", "invalid host name"),
    ("http://127.1/", "invalid IPv4"),
    ("http://2130706433/", "invalid IPv4"),
    ("http://0x7f000001/", "invalid IPv4"),
    ("http://0x7f.0.0.1/", "invalid IPv4"),
    ("http://010.0.0.1/", "invalid IPv4"),
    ("http://256.0.0.1/", "invalid IPv4"),
    ("http://[v1.future]/", "invalid IPv6"),
    ("http://[fe80::1%25eth0]/", "invalid IPv6"),
    ("http://[::1]x/", "invalid IPv6"),
    ("http://[::1/", "not a valid URL"),
    ("http://user:pass@x.test/h", "credentials"),
    ("http://user@x.test/h", "credentials"),
    ("http://:pass@x.test/h", "credentials"),
    ("http://@x.test/h", "credentials"),
    ("http://x.test\\@evil.example/", "credentials"),
    ("http://x.test/a b", "whitespace or control"),
    ("http://x.test/\tb", "whitespace or control"),
    ("http://x.test/\nb", "whitespace or control"),
    ("http://x.test/\rb", "whitespace or control"),
    ("http://x.test/\x00", "whitespace or control"),
    ("http://x.test/\x7f", "whitespace or control"),
    ("\x01http://x.test/", "whitespace or control"),
    (" http://x.test/", "whitespace or control"),
    ("http://x.test/\u00a0", "whitespace or control"),
    ("http://x.test/\u2028", "whitespace or control"),
    ("http://ex\u200bample.org/", "whitespace or control"),
    ("http://x.test/\u202e", "whitespace or control"),
    ("https://a.example/" + "p" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH}"),
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_an_absolute_http_url_with_a_valid_host_and_port_is_accepted(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(("url", "because"), REFUSED)
def test_a_url_breaking_a_rule_is_refused_saying_which(url: str, because: str) -> None:
    problem = url_problem(url)
    assert problem is not None and because in problem, problem


@pytest.mark.parametrize("url", ACCEPTED)
def test_every_accepted_url_is_one_httpx_delivers_to_without_credentials(url: str) -> None:
    parsed = httpx.URL(url)
    assert parsed.scheme in ("http", "https") and parsed.host
    assert parsed.userinfo == b""
