"""Bearer auth at the HTTP edge: a FastAPI dependency that yields the verified caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import AuthenticationFailed, Principal, TokenVerifier

__all__ = ["authenticated"]

_bearer = HTTPBearer(auto_error=False, description="HS256 JWT with sub, role and exp")


def authenticated(secret: Callable[[], str]) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency yielding the caller, documented as bearer auth in OpenAPI."""

    verifiers: dict[str, TokenVerifier] = {}

    async def principal(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
    ) -> Principal:
        if credentials is None:
            raise AuthenticationFailed("missing token")
        key = secret()
        verifier = verifiers.get(key) or verifiers.setdefault(key, TokenVerifier(key))
        return verifier.verify(credentials.credentials)

    return principal
