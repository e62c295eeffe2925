"""Bearer tokens (contract section 2): which tokens name a caller, and what a refused one is
told. Nothing in a token counts before its signature verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.security.tokens import (
    EXPIRED,
    FORGED,
    MALFORMED,
    MISSING,
    REPEATED,
    AuthenticationFailed,
    Principal,
    TokenVerifier,
    issue_token,
    valid_subject,
)
from shared.http.bearer import bearer_token
from tests.support import JWT_SECRET

INVALID_CLAIMS = "The bearer token's claims are not valid"
HEADER = '{"alg":"HS256","typ":"JWT"}'


def segment(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(payload: str, header: str = HEADER, secret: str = JWT_SECRET) -> str:
    """A token of exactly this header and payload text, signed with `secret`."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(mac)}"


def claims(**overrides: Any) -> str:
    values = {"sub": "coach-1", "role": "coach", "exp": int(time.time()) + 3600, **overrides}
    return json.dumps(values)


def refusal(token: str, verifier: TokenVerifier | None = None) -> str:
    with pytest.raises(AuthenticationFailed) as refused:
        (verifier or TokenVerifier(JWT_SECRET)).verify(token)
    return str(refused.value)


def test_a_token_issued_for_the_default_day_names_its_caller() -> None:
    token = issue_token(
        JWT_SECRET, "coach", "coach-1", now=datetime.now(UTC), ttl=timedelta(hours=24)
    )
    assert TokenVerifier(JWT_SECRET).verify(token) == Principal("coach", "coach-1")


@pytest.mark.parametrize("lifetime", [timedelta(hours=25), timedelta(days=3650)])
def test_a_token_living_past_the_lifetime_cap_is_refused(lifetime: timedelta) -> None:
    token = issue_token(JWT_SECRET, "admin", "ops", now=datetime.now(UTC), ttl=lifetime)
    detail = refusal(token)
    assert detail.startswith(INVALID_CLAIMS) and "24 h" in detail


def test_an_expiry_of_ten_to_the_thirtieth_is_refused() -> None:
    detail = refusal(signed(claims(exp=10**30)))
    assert detail.startswith(INVALID_CLAIMS) and "`exp`" in detail


def test_the_lifetime_cap_is_the_verifiers_setting_with_a_minute_of_leeway() -> None:
    hour = TokenVerifier(JWT_SECRET, max_ttl=timedelta(hours=1))
    now = int(time.time())
    assert hour.verify(signed(claims(exp=now + 3600 + 30))).sub == "coach-1"
    assert refusal(signed(claims(exp=now + 2 * 3600)), hour).startswith(INVALID_CLAIMS)


@pytest.mark.parametrize(
    "payload",
    [
        '{"sub":"coach-1","role":"coach","role":"admin","exp":%d}',
        '{"sub":"coach-1","role":"coach","exp":%d,"sub":"coach-2"}',
        '{"sub":"coach-1","role":"coach","exp":%d,"x":{"a":1,"a":2}}',
    ],
)
def test_a_token_repeating_a_claim_is_refused(payload: str) -> None:
    detail = refusal(signed(payload % (time.time() + 3600)))
    assert detail == f"{INVALID_CLAIMS}: a claim or header key is repeated."


def test_a_token_repeating_a_header_key_is_refused() -> None:
    header = '{"alg":"HS256","typ":"JWT","typ":"JWT"}'
    assert refusal(signed(claims(), header)).startswith(INVALID_CLAIMS)


def test_a_forged_token_is_told_only_that_its_signature_does_not_verify() -> None:
    forged = [
        signed(claims(), secret="another-secret-of-at-least-32-bytes!"),
        signed(claims(role="root", exp=10**30), secret="another-secret-of-at-least-32-bytes!"),
        signed('{"role":"coach","role":"admin"}', secret="another-secret-of-at-least-32-bytes!"),
        jwt.encode({"sub": "a", "role": "admin", "exp": time.time() + 60}, None, algorithm="none"),
        signed(claims(), '{"alg":"HS512","typ":"JWT"}'),
    ]
    assert {refusal(token) for token in forged} == {FORGED}


@pytest.mark.parametrize(
    "token",
    [
        "not.a.jwt",
        "two.segments",
        "",
        f"{segment(HEADER)}.{segment('[1, 2]')}.c2ln",
        f"{segment('[]')}.{segment(claims())}.c2ln",
        f"{segment(HEADER)}.{segment('{')}.c2ln",
        signed('{"sub":"a","role":"admin","exp":1e999}'),
        signed('{"sub":"a","role":"admin","exp":NaN}'),
        signed('{"sub":"a","role":"admin","exp":Infinity}'),
        signed('{"sub":"a","role":"admin","exp":' + "9" * 5000 + "}"),
        signed('{"a":' * 100_000 + "1" + "}" * 100_000),
    ],
)
def test_a_token_that_is_not_a_well_formed_jwt_is_told_so(token: str) -> None:
    assert refusal(token) == MALFORMED


def test_an_expired_token_is_told_it_expired() -> None:
    assert refusal(signed(claims(exp=int(time.time()) - 60))) == EXPIRED


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (claims(role="root"), "`role`"),
        (claims(role=None), "`role`"),
        (json.dumps({"sub": "a", "role": "admin"}), "`exp`"),
        (json.dumps({"role": "admin", "exp": time.time() + 60}), "`sub`"),
        (claims(sub=7), "Subject must be a string"),
        (claims(exp="tomorrow"), "exp"),
        (claims(iat=time.time() + 3600), "iat"),
    ],
)
def test_a_signed_token_with_invalid_claims_is_told_which(payload: str, names: str) -> None:
    detail = refusal(signed(payload))
    assert detail.startswith(INVALID_CLAIMS) and names in detail, detail


@pytest.mark.parametrize(
    "sub",
    [
        "",
        "a" * 201,
        "é" * 201,
        "coach\x00one",
        "coach\none",
        "\x1b[31mred",
        "coach\x7f",
        "coach\x85",  # C1: next line
        "coach\u2028one",  # line separator
        "coach\u2029one",  # paragraph separator
        "admin\u202egnp.exe",  # right-to-left override
        "co\u200bach",  # zero-width space
        "\ufeffcoach",  # byte order mark
        "\ud800",  # a lone surrogate
        "coach\udfff",
    ],
)
def test_a_subject_breaking_the_rule_is_refused(sub: str) -> None:
    assert not valid_subject(sub)
    detail = refusal(signed(claims(sub=sub)))
    assert detail.startswith(INVALID_CLAIMS) and "`sub`" in detail


@pytest.mark.parametrize(
    "sub", ["c", "coach-1", "a" * 200, "\U0010fffd" * 200, "Zoë Ñúñez", "سارا", "😀" * 50]
)
def test_a_subject_of_one_to_two_hundred_printable_characters_names_the_caller(
    sub: str,
) -> None:
    assert TokenVerifier(JWT_SECRET).verify(signed(claims(sub=sub))).sub == sub


@given(st.text(max_size=250))
def test_any_subject_names_the_caller_exactly_when_it_is_valid(sub: str) -> None:
    token = signed(claims(sub=sub))
    if valid_subject(sub):
        assert TokenVerifier(JWT_SECRET).verify(token).sub == sub
    else:
        assert refusal(token).startswith(INVALID_CLAIMS)


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")))
def test_no_text_makes_verifying_fail_with_anything_but_a_refusal(text: str) -> None:
    for token in (text, f"{segment(HEADER)}.{segment(text)}.c2ln", signed(text)):
        with pytest.raises(AuthenticationFailed):
            TokenVerifier(JWT_SECRET).verify(token)


def test_one_bearer_header_gives_its_token() -> None:
    assert bearer_token(["Bearer abc.def.ghi"]) == "abc.def.ghi"
    assert bearer_token(["bearer abc.def.ghi"]) == "abc.def.ghi"


@pytest.mark.parametrize("headers", [[], [""], ["Bearer"], ["Bearer "], ["Basic YTpi"]])
def test_a_request_without_a_bearer_token_is_told_to_send_one(headers: list[str]) -> None:
    with pytest.raises(AuthenticationFailed, match="A bearer token is required"):
        bearer_token(headers)
    assert MISSING.startswith("A bearer token is required")


def test_two_authorization_headers_are_refused_even_when_both_are_good() -> None:
    good = f"Bearer {signed(claims())}"
    with pytest.raises(AuthenticationFailed) as refused:
        bearer_token([good, good])
    assert str(refused.value) == REPEATED
