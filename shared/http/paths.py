"""Request paths as the client wrote them: an encoded slash (`%2F`) is part of a segment,
never a separator, so it cannot turn `/v1/engagements/<id>%2Ftrust` into the trust route."""

from __future__ import annotations

from starlette.types import Scope

__all__ = ["ENCODED_SLASH", "has_encoded_slash"]

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
