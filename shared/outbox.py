"""Transactional outbox relay: the event log itself is the outbox.

Events committed with a command are published to the service's topic in log order (so per
stream in version order), keyed by stream id. The relay wakes at once after a local commit,
polls otherwise, and keeps its checkpoint in PostgreSQL: after a broker outage or a restart
it resumes where it stopped (at least once; consumers deduplicate by `event_id`).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from prometheus_client import Counter, Gauge

from shared.eventstore import START, EventStore, load_checkpoint, save_checkpoint
from shared.kafka import Publisher, envelope_message

log = structlog.get_logger(__name__)

PUBLISHED = Counter("rapport_outbox_published_total", "Events published by the relay", ["service"])
FAILURES = Counter("rapport_outbox_failures_total", "Failed publish attempts", ["service"])
BATCH_SIZE = Gauge(
    "rapport_outbox_last_batch_size", "Size of the last batch published", ["service"]
)

CHECKPOINT = "outbox"


class OutboxRelay:
    """Publishes a service's committed events to its Kafka topic."""

    def __init__(
        self,
        store: EventStore,
        publisher: Publisher,
        topic: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        max_backoff: float = 5.0,
        history_check_interval: float = 30.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._topic = topic
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._history_check_interval = history_check_interval
        self._wake = store.appended.subscribe()
        self._service = store.producer
        self._lock = f"outbox:{store.producer}:{topic}"

    async def publish_pending(self) -> int:
        """Publish everything committed since the checkpoint; returns how many were sent.

        One relay per service publishes at a time (a session advisory lock, so several
        instances can run). No transaction stays open while the broker is awaited: an open
        transaction would hold back the log's horizon for every reader.
        """
        sent = 0
        async with self._store.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock):
                return 0  # another instance is relaying
            try:
                checkpoint = await load_checkpoint(conn, CHECKPOINT)
                while batch := await self._store.read_after(conn, checkpoint, self._batch_size):
                    await self._publisher.publish(
                        [envelope_message(self._topic, item.envelope) for item in batch]
                    )
                    checkpoint = batch[-1].checkpoint
                    await save_checkpoint(conn, CHECKPOINT, checkpoint)
                    sent += len(batch)
                    PUBLISHED.labels(self._service).inc(len(batch))
                    BATCH_SIZE.labels(self._service).set(len(batch))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock)
        return sent

    async def recover_lost_history(self) -> bool:
        """If the broker holds nothing of the topic but we published before (an in-memory
        broker restarted, a topic deleted), publish the whole log again from PostgreSQL,
        the source of truth. Consumers deduplicate by `event_id`. True if it rewound."""
        if not await self._publisher.topic_is_empty(self._topic):
            return False
        async with self._store.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock):
                return False
            try:
                if await load_checkpoint(conn, CHECKPOINT) == START:
                    return False
                await save_checkpoint(conn, CHECKPOINT, START)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock)
        log.warning("outbox_rewound", topic=self._topic, reason="the broker lost the topic")
        return True

    async def run(self) -> None:
        """Relay until cancelled, backing off while the broker or database is away."""
        backoff = 0.1
        loop = asyncio.get_running_loop()
        next_history_check = loop.time()  # at start, after any failure, and now and then
        while True:
            self._wake.clear()
            try:
                if loop.time() >= next_history_check:
                    await self.recover_lost_history()
                    next_history_check = loop.time() + self._history_check_interval
                await self.publish_pending()
                backoff = 0.1
            except Exception as error:
                FAILURES.labels(self._service).inc()
                log.warning("outbox_publish_failed", error=repr(error), retry_in=backoff)
                await self._publisher.reset()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                next_history_check = loop.time()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
