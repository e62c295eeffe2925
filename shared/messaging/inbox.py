"""Idempotent consumption: an event's effects and its `event_id` commit together.

A message that cannot be parsed or applied is parked (kept in PostgreSQL with its error, for
an admin to retry or skip) and goes to `<topic>.dlq` with the error in its headers; the
partition moves on. Transient failures (database or broker away, a version race, a broken
connection) are never dead-lettered: they are retried here, then raised so the message is
delivered again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from prometheus_client import Counter

from shared.messaging.kafka import Headers, OutboundMessage, Publisher, dlq_topic
from shared.model.envelope import Envelope
from shared.model.log import ConcurrencyConflict
from shared.resilience.faults import is_transient
from shared.resilience.retry import Backoff, Retry, retrying
from shared.storage.parking import ParkedEvent, Parking, park
from shared.storage.units import PostgresUnitsOfWork
from shared.usecases.ports import UnitOfWork

__all__ = ["CONSUMED", "Handler", "Inbox", "NotApplied", "is_retryable"]

log = structlog.get_logger(__name__)

CONSUMED = Counter(
    "rapport_inbox_messages_total", "Consumed messages by outcome", ["consumer", "outcome"]
)

Handler = Callable[[UnitOfWork, Envelope], Awaitable[None]]
"""A consumer's use case: applies one event in the inbox's unit of work."""


def is_retryable(error: BaseException) -> bool:
    """Whether the same message may apply if tried again: a transient failure or a race."""
    return isinstance(error, ConcurrencyConflict) or is_transient(error)


class NotApplied(Exception):
    """A parked message still cannot be applied."""


def _parse(value: bytes) -> Envelope:
    envelope = Envelope.model_validate_json(value)
    if not envelope.is_intact():
        raise ValueError("hash does not match the envelope")
    return envelope


class Inbox:
    """Runs a handler at most once per `event_id` for one named consumer."""

    def __init__(
        self,
        units: PostgresUnitsOfWork,
        consumer: str,
        dead_letters: Publisher,
        *,
        attempts: int = 3,
        handles: frozenset[str] | None = None,
    ) -> None:
        self._units = units
        self._store = units.store
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._attempts = attempts
        # a transient failure or a race: tried again soon, a few times, before redelivery
        self._quick = Retry(
            attempts=attempts, backoff=Backoff(first=0.05, most=1.0), worth=is_retryable
        )
        self._handles = handles

    @property
    def consumer(self) -> str:
        return self._consumer

    async def receive(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        handler: Handler,
    ) -> str:
        """Handle one raw message; returns the outcome: applied, duplicate, ignored (a valid
        event of a type this consumer does not act on) or dead_lettered.

        Raises a transient error (after a few quick retries) so the message comes again.
        """
        try:
            envelope = _parse(value)
        except Exception as error:
            return await self._set_aside(topic, key, value, headers, None, error)
        if self._handles is not None and envelope.event_type not in self._handles:
            CONSUMED.labels(self._consumer, "ignored").inc()
            return "ignored"

        def again(error: BaseException, _attempt: int, _pause: float) -> None:
            log.info("inbox_retry", consumer=self._consumer, error=repr(error))

        try:
            outcome = await retrying(
                lambda: self._apply(envelope, handler), self._quick, on_retry=again
            )
        except Exception as error:
            if not is_retryable(error):
                return await self._set_aside(topic, key, value, headers, envelope, error)
            log.warning("inbox_redeliver", consumer=self._consumer, error=repr(error))
            await asyncio.sleep(1.0)  # the message comes again: no hot loop meanwhile
            raise
        CONSUMED.labels(self._consumer, outcome).inc()
        return outcome

    async def retry(self, parked: ParkedEvent, handler: Handler) -> str:
        """Apply a parked message now: applied or duplicate, else NotApplied with the reason
        (a transient failure is raised as it is)."""
        try:
            envelope = _parse(parked.message)
            return await self._apply(envelope, handler)
        except Exception as error:
            if is_retryable(error):
                raise
            raise NotApplied(f"{type(error).__name__}: {error}") from error

    async def _apply(self, envelope: Envelope, handler: Handler) -> str:
        async with self._store.transaction() as conn:
            seen = await conn.fetchval(
                "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2",
                self._consumer,
                envelope.event_id,
            )
            if seen:
                return "duplicate"
            await handler(self._units.within(conn), envelope)
            inserted = await conn.execute(
                "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                self._consumer,
                envelope.event_id,
            )
            if inserted.endswith(" 0"):
                raise ConcurrencyConflict(envelope.stream_id, None, None)  # raced a redelivery
        return "applied"

    async def _set_aside(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        envelope: Envelope | None,
        error: Exception,
    ) -> str:
        """Park the message in PostgreSQL (the durable record an admin acts on), then copy it
        to the topic's DLQ for subscribers of dead letters."""
        reason = f"{type(error).__name__}: {error}"
        log.warning("dead_lettered", consumer=self._consumer, topic=topic, error=reason[:500])
        async with self._store.transaction() as conn:
            await park(
                conn,
                self._store.producer,
                Parking(
                    kind="consumer",
                    name=self._consumer,
                    event_id=envelope.event_id
                    if envelope is not None
                    else "sha256:" + hashlib.sha256(value).hexdigest(),
                    message=value,
                    error=reason,
                    stream_id=None if envelope is None else envelope.stream_id,
                    event_type=None if envelope is None else envelope.event_type,
                    topic=topic,
                    message_key=key,
                    headers=list(headers),
                ),
            )
        extra: Headers = [
            ("error", reason[:2000].encode()),
            ("error_type", type(error).__name__.encode()),
            ("original_topic", topic.encode()),
            ("consumer", self._consumer.encode()),
        ]
        await self._dead_letters.publish(
            [OutboundMessage(dlq_topic(topic), key or b"", value, [*headers, *extra])]
        )
        CONSUMED.labels(self._consumer, "dead_lettered").inc()
        return "dead_lettered"
