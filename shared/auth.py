"""Bearer tokens: HS256 JWTs with `sub`, `role` and `exp` (contract section 2)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import jwt

__all__ = [
    "ROLES",
    "AuthenticationFailed",
    "PermissionDenied",
    "Principal",
    "Role",
    "TokenVerifier",
    "issue_token",
    "verify_token",
]

Role = Literal["coach", "client", "supervisor", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("coach", "client", "supervisor", "auditor", "admin")


class AuthenticationFailed(Exception):
    """No token, or one that does not verify: 401."""


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


def issue_token(secret: str, role: Role, sub: str, *, now: datetime, ttl: timedelta) -> str:
    """A signed token for `sub` acting as `role`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Principal:
    """The principal a token names, or AuthenticationFailed."""
    return _verified(secret, token)[0]


def _verified(secret: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(str(error)) from error
    role, sub = claims.get("role"), claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise AuthenticationFailed("the token's role or subject is not valid")
    return Principal(role=role, sub=sub), float(claims["exp"])


class TokenVerifier:
    """Verifies bearer tokens, remembering those that verified until they expire (a client
    sends the same token with every request; the signature need not be checked each time)."""

    def __init__(self, secret: str, *, capacity: int = 10_000) -> None:
        self._secret = secret
        self._capacity = capacity
        self._known: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        known = self._known.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        principal, expires = _verified(self._secret, token)
        if len(self._known) >= self._capacity:
            self._known.clear()
        self._known[token] = (principal, expires)
        return principal
