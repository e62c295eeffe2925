"""Request paths as the client wrote them: an encoded slash (`%2F`) is part of a segment,
never a separator, so it cannot turn `/v1/engagements/<id>%2Ftrust` into the trust route."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http.problems import problem

__all__ = ["ENCODED_SLASH", "RefuseEncodedSlash", "has_encoded_slash"]

ENCODED_SLASH = (
    "No route or id matches this path: an encoded slash (%2F) is part of a path segment,"
    " and no id holds one."
)


def has_encoded_slash(scope: Scope) -> bool:
    """Whether the raw path (before percent-decoding) holds an encoded slash.

    Routing matches the decoded path, where `%2F` has become a `/` like any other; no route
    or id of ours has a slash inside a segment, so such a path names nothing (404)."""
    raw: bytes | None = scope.get("raw_path")
    return raw is not None and b"%2f" in raw.lower()


class RefuseEncodedSlash:
    """Answers 404 to a path with an encoded slash, before any route could match it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_encoded_slash(scope):
            await problem(404, ENCODED_SLASH)(scope, receive, send)
            return
        await self.app(scope, receive, send)
