"""Bearer auth at the HTTP edge: a FastAPI dependency that yields the verified caller.

`bearer_token` is the one reading of the `Authorization` header, for FastAPI's routes and the
command gate's alike: exactly one header, of the `Bearer` scheme. More than one is refused
(401) rather than read as the first or the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.security.tokens import MISSING, REPEATED, AuthenticationFailed, Principal, TokenVerifier

__all__ = ["Bearer", "authenticated", "bearer_token"]

# Declares the scheme in OpenAPI; the header itself is read by `bearer_token`.
_bearer = HTTPBearer(auto_error=False, description="HS256 JWT with sub, role and exp")


def bearer_token(authorizations: Sequence[str]) -> str:
    """The token of a request's `Authorization` headers (all of them, in order), or
    AuthenticationFailed: none, more than one, or not `Bearer <token>`."""
    if len(authorizations) > 1:
        raise AuthenticationFailed(REPEATED)
    scheme, _, token = (authorizations[0] if authorizations else "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(MISSING)
    return token


class Bearer:
    """A FastAPI dependency yielding the caller, documented as bearer auth in OpenAPI."""

    def __init__(self, tokens: Callable[[], TokenVerifier]) -> None:
        self._tokens = tokens

    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
    ) -> Principal:
        return self.principal(request)

    def principal(self, request: Request) -> Principal:
        """The caller the request's `Authorization` header names, or AuthenticationFailed."""
        token = bearer_token(request.headers.getlist("authorization"))
        return self._tokens().verify(token)


def authenticated(tokens: Callable[[], TokenVerifier]) -> Bearer:
    """The bearer dependency of a service whose token verifier `tokens()` answers."""
    return Bearer(tokens)
