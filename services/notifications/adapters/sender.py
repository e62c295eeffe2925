"""POSTing a signed notification to a webhook over HTTP (httpx), bounded by a timeout."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Answer:
    """How one POST went: the status code if one came back, else a short error code."""

    status_code: int | None
    error: str | None


def client(timeout: float, *, max_connections: int = 100) -> httpx.AsyncClient:
    """A client that never follows redirects (a 3xx is not a delivery)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        headers={"User-Agent": "rapport-notifications/1"},
    )


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Answer:
    """One attempt; the whole exchange is bounded by `timeout`, the answer's body is not read."""
    try:
        async with asyncio.timeout(timeout):
            async with http.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
    except (TimeoutError, httpx.TimeoutException):
        return Answer(None, "timeout")
    except httpx.ConnectError:
        return Answer(None, "connect_error")
    except httpx.HTTPError as error:
        return Answer(None, type(error).__name__)
    except (OSError, ValueError, httpx.InvalidURL) as error:
        return Answer(None, type(error).__name__)
    return Answer(code, None if 200 <= code < 300 else f"http_{code}")
