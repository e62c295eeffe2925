"""Bearer auth at the HTTP edge: a FastAPI dependency that yields the verified caller."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import AuthenticationFailed, Principal, TokenVerifier

__all__ = ["Bearer", "authenticated"]

_bearer = HTTPBearer(auto_error=False, description="HS256 JWT with sub, role and exp")


class Bearer:
    """A FastAPI dependency yielding the caller, documented as bearer auth in OpenAPI."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret
        self._verifiers: dict[str, TokenVerifier] = {}

    async def __call__(
        self, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)
    ) -> Principal:
        if credentials is None:
            raise AuthenticationFailed("missing token")
        return self._verifier().verify(credentials.credentials)

    def principal_of(self, authorization: str | None) -> Principal | None:
        """The caller named by a raw `Authorization` header if it verifies, else None (the
        dependency then answers why)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            return self._verifier().verify(token)
        except AuthenticationFailed:
            return None

    def _verifier(self) -> TokenVerifier:
        key = self._secret()
        return self._verifiers.get(key) or self._verifiers.setdefault(key, TokenVerifier(key))


def authenticated(secret: Callable[[], str]) -> Bearer:
    """The bearer dependency of a service whose JWT secret `secret()` answers."""
    return Bearer(secret)
