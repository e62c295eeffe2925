"""Bearer tokens: HS256 JWTs with `sub`, `role` and `exp` (contract section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import jwt

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
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(str(error)) from error
    role, sub = claims.get("role"), claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise AuthenticationFailed("the token's role or subject is not valid")
    return Principal(role=role, sub=sub)
