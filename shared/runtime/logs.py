"""Structured logging through structlog, one configuration for every process."""

from __future__ import annotations

import logging

import structlog

__all__ = [
    "configure_logging",
]


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    """Render key-value logs (JSON when asked) at the given level."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, format="%(message)s")
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "faststream"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
