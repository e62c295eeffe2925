"""Serving an app: `python -m services.<name>` (`main`), and uvicorn inside another program."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from shared.http.connections import HttpLimits, serving_options
from shared.runtime.config import Settings
from shared.runtime.lifecycle import MissingSecret, require
from shared.runtime.service import ServiceDefinition

__all__ = ["embedded_server", "http_limits", "main", "run_forever", "worker_app"]

GC_THRESHOLDS = (20_000, 20, 20)
_SERVICE_VARIABLE = "RAPPORT_SERVING"  # which service a worker process builds


def http_limits(settings: Settings) -> HttpLimits:
    """The HTTP server's bounds the settings name (`RAPPORT_HTTP_*`)."""
    return HttpLimits(
        max_head_bytes=settings.http_max_head_bytes,
        max_headers=settings.http_max_headers,
        head_timeout=settings.http_head_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
        keep_alive=settings.http_keep_alive_seconds,
        max_connections=settings.http_max_connections,
    )


def embedded_server(
    app: FastAPI,
    host: str,
    port: int,
    *,
    limits: HttpLimits | None = None,
    log_level: str = "warning",
) -> uvicorn.Server:
    """A uvicorn server to run inside another program's event loop (`await server.serve()`),
    within `limits` (the default settings' unless given); set `should_exit` to stop it
    gracefully."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        **serving_options(limits or HttpLimits()),
    )
    return _QuietServer(config)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _settle_garbage_collector() -> None:
    """What exists by now (modules, the app) lives as long as the process: it leaves the
    garbage collector's scans, and the collector runs less often, which keeps its pauses out
    of the requests' tail latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_forever(
    app: FastAPI, host: str, port: int, *, limits: HttpLimits, log_level: str = "info"
) -> None:
    """Serve `app` in this process within `limits` until SIGINT/SIGTERM."""
    _settle_garbage_collector()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        **serving_options(limits),
    )


def _configured(name: str) -> Settings:
    from shared.runtime.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        require(settings)
    except MissingSecret as error:
        print(f"rapport {name}: refusing to start: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    return settings


def worker_app() -> FastAPI:
    """The app of one of a service's worker processes (`RAPPORT_WORKERS` > 1): uvicorn starts
    each worker afresh and imports this factory by name."""
    name = os.environ[_SERVICE_VARIABLE]
    settings = _configured(name)
    bootstrap = importlib.import_module(f"services.{name}.bootstrap")
    app: FastAPI = bootstrap.create_app(settings)
    _settle_garbage_collector()
    return app


def main(service: ServiceDefinition[Any]) -> None:
    """`python -m services.<name>`: configure logging and serve the app from settings; with
    `RAPPORT_WORKERS` > 1, that many worker processes share the port (uvicorn supervises
    them and replaces one that dies). Every process serves within the settings' HTTP limits
    (`shared.http.connections`)."""
    name = service.name
    settings = _configured(name)
    host, port, limits = settings.host, settings.port_of(name, service.port), http_limits(settings)
    if settings.workers == 1:
        run_forever(service.app(settings), host, port, limits=limits, log_level=settings.log_level)
        return
    os.environ[_SERVICE_VARIABLE] = name
    uvicorn.run(
        "shared.runtime.server:worker_app",
        factory=True,
        workers=settings.workers,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        **serving_options(limits),
    )
