"""Bearer tokens: HS256 JWTs with `sub`, `role` and `exp` (contract section 2).

A token is refused (401) for one of five reasons, each with its own `detail`: there is none, it
is not a well-formed JWT, its signature does not verify, it has expired, or its claims are not
valid (an unknown role, a bad `sub`, a lifetime past the cap, a repeated claim or header key).
Nothing in a token is trusted before its signature verifies, so a forged token is only ever
told that.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

import jwt
from jwt.utils import base64url_decode

__all__ = [
    "MAX_TOKEN_TTL",
    "ROLES",
    "SUB_MAX_LENGTH",
    "AuthenticationFailed",
    "PermissionDenied",
    "Principal",
    "Role",
    "TokenVerifier",
    "issue_token",
    "valid_subject",
]

Role = Literal["coach", "client", "supervisor", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("coach", "client", "supervisor", "auditor", "admin")
SUB_MAX_LENGTH = 200
MAX_TOKEN_TTL = timedelta(hours=24)
# How far an `exp` may lie past the lifetime cap: the issuer's clock may run a little ahead.
TTL_LEEWAY = timedelta(seconds=60)
# Characters no subject may hold: control characters (C0, DEL, C1), format characters (bidi
# overrides, zero-width joiners and spaces, the BOM: invisible, they make two ids that look the
# same differ and reorder what an audit report shows), line and paragraph separators (they
# break line-oriented logs as a newline does) and surrogates (only ever lone in a decoded JSON
# string; they cannot be encoded, so could never be stored).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

MISSING = "A bearer token is required: send `Authorization: Bearer <token>`."
REPEATED = "The request has more than one Authorization header: send exactly one."
MALFORMED = "The bearer token is not a well-formed JWT."
FORGED = "The bearer token's signature does not verify."
EXPIRED = "The bearer token has expired."


class AuthenticationFailed(Exception):
    """No token, or one that does not verify: 401. The message says which, for the caller."""


class PermissionDenied(Exception):
    """A valid token without the right: 403."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and that role's id."""

    role: Role
    sub: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def valid_subject(sub: object) -> bool:
    """Whether `sub` may name a caller: 1 to 200 characters, none of them a control, format or
    separator character or a surrogate."""
    return (
        isinstance(sub, str)
        and 0 < len(sub) <= SUB_MAX_LENGTH
        and not any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in sub)
    )


def issue_token(secret: str, role: Role, sub: str, *, now: datetime, ttl: timedelta) -> str:
    """A signed token for `sub` acting as `role`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def _invalid_claims(why: str) -> NoReturn:
    raise AuthenticationFailed(f"The bearer token's claims are not valid: {why}.")


def _malformed() -> NoReturn:
    raise AuthenticationFailed(MALFORMED)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text}")
    return number


def _not_json(text: str) -> NoReturn:
    raise ValueError(f"{text} is not JSON")


def _repeats_a_key(encoded: str) -> bool:
    """Whether a token's JSON object segment repeats a key; MALFORMED unless it is a JSON
    object of finite numbers (no `NaN`, `Infinity` or `1e999`, which PyJWT cannot compare)."""
    repeated = False

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        found = dict(pairs)
        repeated = repeated or len(found) != len(pairs)
        return found

    try:
        text = base64url_decode(encoded.encode("ascii"))
        value = json.loads(
            text, object_pairs_hook=unique, parse_float=_finite, parse_constant=_not_json
        )
    except (ValueError, RecursionError):  # binascii.Error and UnicodeError are ValueErrors
        _malformed()
    if not isinstance(value, dict):
        _malformed()
    return repeated


def _structure(token: str) -> bool:
    """Check that `token` is a JWS of two JSON objects and a signature (MALFORMED otherwise);
    whether the header or the claims repeat a key, which is refused only once the signature
    verified."""
    segments = token.split(".")
    if len(segments) != 3:
        _malformed()
    header, claims, signature = segments
    try:
        base64url_decode(signature.encode("ascii"))
    except ValueError:
        _malformed()
    return _repeats_a_key(header) | _repeats_a_key(claims)


def _verified(secret: str, token: str, now: float, max_ttl: timedelta) -> tuple[Principal, float]:
    """The principal a token names and when it expires, or AuthenticationFailed saying why."""
    repeats = _structure(token)
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as error:
        raise AuthenticationFailed(FORGED) from error
    except jwt.ExpiredSignatureError as error:
        raise AuthenticationFailed(EXPIRED) from error
    except jwt.MissingRequiredClaimError as error:
        _invalid_claims(f"the claim `{error.claim}` is missing")
    except jwt.PyJWTError as error:  # verified, but a claim PyJWT checks is wrong
        _invalid_claims(str(error).rstrip("."))
    if repeats:
        _invalid_claims("a claim or header key is repeated")
    role, sub, expires = claims["role"], claims["sub"], float(claims["exp"])
    if role not in ROLES:
        _invalid_claims(f"`role` must be one of {', '.join(ROLES)}")
    if not valid_subject(sub):
        _invalid_claims(
            f"`sub` must be 1 to {SUB_MAX_LENGTH} characters, with no control, format or "
            "separator character and no lone surrogate"
        )
    if expires - now > (max_ttl + TTL_LEEWAY).total_seconds():
        _invalid_claims(f"`exp` lies more than {_duration(max_ttl)} ahead (the lifetime cap)")
    return Principal(role=role, sub=sub), expires


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"


class TokenVerifier:
    """Verifies bearer tokens, remembering those that verified until they expire (a client
    sends the same token with every request; the signature need not be checked each time).
    A token may live at most `max_ttl`: one whose `exp` lies further ahead is refused."""

    def __init__(
        self,
        secret: str,
        *,
        max_ttl: timedelta = MAX_TOKEN_TTL,
        capacity: int = 10_000,
    ) -> None:
        self._secret = secret
        self._max_ttl = max_ttl
        self._capacity = capacity
        self._known: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        now = time.time()
        known = self._known.get(token)
        if known is not None and known[1] > now:
            return known[0]
        principal, expires = _verified(self._secret, token, now, self._max_ttl)
        if len(self._known) >= self._capacity:
            self._known.clear()
        self._known[token] = (principal, expires)
        return principal
