"""Request bodies are bounded before anything reads them: 413 over the size, 415 when not JSON."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import problem

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "is_json", "too_large"]

MAX_BODY_BYTES = 256 * 1024
NOT_JSON = "Request bodies must be application/json"


def too_large(limit: int) -> str:
    """The 413's detail, naming the limit (the same whether the body declared its length)."""
    return f"The request body is larger than the limit of {limit:,} bytes ({limit / 1024:g} KiB)."


def is_json(content_type: bytes) -> bool:
    """Whether a `Content-Type` value names JSON (`application/json` or `...+json`)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class BodyLimit:
    """Refuses request bodies over a size with 413 and bodies that are not JSON with 415,
    before anything reads them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or {})
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await problem(413, too_large(self.limit))(scope, receive, send)
            return
        content_type = headers.get(b"content-type")
        has_body = declared != b"0" if declared is not None else b"transfer-encoding" in headers
        sends_body = scope.get("method") in ("POST", "PUT", "PATCH") and has_body
        if sends_body and content_type is None:
            await problem(415, f"{NOT_JSON}; this one has no Content-Type.")(scope, receive, send)
            return
        if sends_body and content_type is not None and not is_json(content_type):
            await problem(415, f"{NOT_JSON}.")(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, limited, send)
