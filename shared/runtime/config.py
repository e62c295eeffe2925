"""Settings from the environment (`RAPPORT_*`), through pydantic-settings."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Settings",
]


def _seconds_or_iso(value: object) -> object:
    """A duration as the environment spells it: seconds (`86400`) or ISO 8601 (`PT24H`)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


_Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso)]


class Settings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    database_url: str | None = None
    kafka_bootstrap: str | None = None
    jwt_secret: str | None = None
    master_key: str | None = None
    host: str = "127.0.0.1"
    log_level: str = "info"
    log_json: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=6, ge=1)
    webhook_base_backoff_seconds: float = Field(default=1.0, gt=0)
    # Webhooks to loopback, private, link-local or reserved addresses are refused unless this
    # is set (`rapport dev` sets it: local receivers are the point there).
    webhook_allow_private_targets: bool = False
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    # Partitions of each topic the services create (and re-create after a broker lost them).
    kafka_partitions: int = Field(default=3, ge=1)
    # Stream-hash segments the partitioned projections are folded in, shared among instances.
    projection_segments: int = Field(default=4, ge=1, le=256)
    # Connections each instance may hold. Requests, the projection runner and the relay share
    # them, so a pool smaller than the requests in flight queues requests behind background
    # work (measured: 10 gave a p99 of 190 ms at 32 connections, 20 gave 70 ms).
    db_pool_size: int = Field(default=20, ge=2, le=500)
    # How long a starting service waits for its database and broker before giving up.
    startup_timeout: float = Field(default=60.0, gt=0)
    # Processes serving one service on one port (`python -m services.<name>`): each is a full
    # instance (its own pool, consumers and projection segments) behind one listening socket.
    workers: int = Field(default=1, ge=1, le=64)
    # False: this instance serves HTTP and consumes its topics, and leaves the background work
    # (projections, the outbox relay, the service's workers) to its other instances.
    background: bool = True
    # A token whose `exp` lies further ahead than this (seconds, or ISO 8601 like `PT24H`) is
    # refused, however it was signed.
    max_token_ttl: _Duration = Field(default=timedelta(hours=24), gt=timedelta(0))
    # How long the first answer to an `Idempotency-Key` is kept (then the key is new again),
    # and how often each instance's background work deletes the expired ones.
    idempotency_retention: _Duration = Field(default=timedelta(hours=24), gt=timedelta(0))
    idempotency_prune_seconds: float = Field(default=60.0, gt=0)
    # The HTTP edge of each process (`shared.http.connections`): a request's line and headers may
    # take this many bytes and hold this many headers (431 past either); they must arrive
    # within `http_head_timeout_seconds` of their first byte, and the body within
    # `http_body_timeout_seconds` of them (408 and the connection closed otherwise); an idle
    # kept-alive connection is closed after `http_keep_alive_seconds`; a connection past
    # `http_max_connections` open at once is closed as soon as it is accepted.
    http_max_head_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    http_max_headers: int = Field(default=100, ge=8, le=10_000)
    http_head_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=1000, ge=1)

    def port_of(self, service: str, default: int) -> int:
        """The port `service` serves on: `RAPPORT_<SERVICE>_PORT` (contract section 1), else
        `default` (its definition's)."""
        variable = f"RAPPORT_{service.upper()}_PORT"
        text = os.environ.get(variable)
        if text is None:
            return default
        port = int(text) if text.isdigit() else 0
        if not 0 < port < 65536:
            raise ValueError(f"{variable} must be a port number (1 to 65535), not {text!r}")
        return port
