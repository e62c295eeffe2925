"""Idempotent consumption: an event's effects and its `event_id` commit together.

A message that cannot be parsed or applied goes to `<topic>.dlq` with the error in its
headers and the partition moves on. Transient failures (database or broker away, a version
race) are raised so the message is delivered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog
from prometheus_client import Counter

from shared.envelope import Envelope
from shared.eventstore import ConcurrencyConflict, EventStore
from shared.kafka import Headers, OutboundMessage, Publisher, dlq_topic

log = structlog.get_logger(__name__)

CONSUMED = Counter(
    "rapport_inbox_messages_total", "Consumed messages by outcome", ["consumer", "outcome"]
)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
TRANSIENT = (OSError, TimeoutError, asyncpg.InterfaceError, ConcurrencyConflict)
# SQLSTATE classes that say "the database is away or busy", not "this message is bad":
# connection exceptions, transaction rollbacks, insufficient resources, operator intervention.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def is_transient(error: BaseException) -> bool:
    """Whether trying the same message again later may succeed."""
    if isinstance(error, TRANSIENT):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(error, asyncpg.PostgresError) and str(sqlstate)[:2] in (
        TRANSIENT_SQLSTATE_CLASSES
    )


class Inbox:
    """Runs a handler at most once per `event_id` for one named consumer."""

    def __init__(
        self, store: EventStore, consumer: str, dead_letters: Publisher, *, attempts: int = 3
    ) -> None:
        self._store = store
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._attempts = attempts

    async def receive(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        handler: Handler,
    ) -> str:
        """Handle one raw message; returns the outcome: applied, duplicate or dead_lettered."""
        try:
            envelope = Envelope.model_validate_json(value)
            if not envelope.is_intact():
                raise ValueError("hash does not match the envelope")
        except Exception as error:
            return await self._dead_letter(topic, key, value, headers, error)
        for attempt in range(1, self._attempts + 1):
            try:
                outcome = await self._apply(envelope, handler)
            except Exception as error:
                if not is_transient(error):
                    return await self._dead_letter(topic, key, value, headers, error)
                if attempt == self._attempts:
                    log.warning("inbox_redeliver", consumer=self._consumer, error=repr(error))
                    await asyncio.sleep(1.0)  # the message comes again: no hot loop meanwhile
                    raise
                log.info("inbox_retry", consumer=self._consumer, error=repr(error))
                await asyncio.sleep(0.05 * attempt)
                continue
            CONSUMED.labels(self._consumer, outcome).inc()
            return outcome
        raise AssertionError("unreachable")

    async def _apply(self, envelope: Envelope, handler: Handler) -> str:
        async with self._store.transaction() as conn:
            seen = await conn.fetchval(
                "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2",
                self._consumer,
                envelope.event_id,
            )
            if seen:
                return "duplicate"
            await handler(conn, envelope)
            inserted = await conn.execute(
                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                self._consumer,
                envelope.event_id,
            )
            if inserted.endswith(" 0"):
                raise ConcurrencyConflict(envelope.stream_id, None, None)  # raced a redelivery
        return "applied"

    async def _dead_letter(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        error: Exception,
    ) -> str:
        log.warning("dead_lettered", consumer=self._consumer, topic=topic, error=repr(error))
        extra: Headers = [
            ("error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("error_type", type(error).__name__.encode()),
            ("original_topic", topic.encode()),
            ("consumer", self._consumer.encode()),
        ]
        await self._dead_letters.publish(
            [OutboundMessage(dlq_topic(topic), key or b"", value, [*headers, *extra])]
        )
        CONSUMED.labels(self._consumer, "dead_lettered").inc()
        return "dead_lettered"
