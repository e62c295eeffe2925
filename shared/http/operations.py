"""What operators read: `/health` (database and broker), `/metrics` (Prometheus text), and
the request counts and latencies behind them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import RETRY_AFTER_SECONDS

__all__ = ["HEALTH_CHECK_SECONDS", "HealthCheck", "Observe", "RequestMetrics", "add_operations"]

REQUESTS = Counter(
    "rapport_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
LATENCY = Histogram("rapport_http_request_seconds", "HTTP latency", ["service", "route"])

HealthCheck = Callable[[], Awaitable[bool]]
HEALTH_CHECK_SECONDS = 2.0


class RequestMetrics:
    """A service's request counts by route and status, and their latencies."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._known: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, path: str, status: int, started: float) -> None:
        """Count one request to the route `path`, begun at `started` (`time.perf_counter`)."""
        requests, latency = self._series(method, path, status)
        requests.inc()
        latency.observe(time.perf_counter() - started)

    def _series(self, method: str, path: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of one kind of request (looked up once)."""
        kind = (method, path, status)
        found = self._known.get(kind)
        if found is None:
            found = (
                REQUESTS.labels(self.service, method, path, str(status)),
                LATENCY.labels(self.service, path),
            )
            self._known[kind] = found
        return found


class Observe:
    """Counts requests by route and status and times them (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], path, status, started)


def add_operations(app: FastAPI, health_checks: dict[str, HealthCheck]) -> None:
    """`GET /health` (200, or 503 naming what is down) and `GET /metrics`."""

    @app.get(
        "/health",
        tags=["operations"],
        responses={
            200: {"description": "Database and broker reachable"},
            503: {"description": "Database or broker unreachable"},
        },
    )
    async def health() -> JSONResponse:
        results = {}
        for name, check in health_checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), HEALTH_CHECK_SECONDS))
            except Exception:
                results[name] = False
        healthy = all(results.values())
        down = [name for name, ok in results.items() if not ok]
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "checks": results}
        if down:
            body["down"] = down
        return JSONResponse(
            body,
            status_code=200 if healthy else 503,
            headers=None if healthy else {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
