"""Transactional outbox relay: the event log itself is the outbox.

Events committed with a command are published to the service's topic in log order (so per
stream in version order), keyed by stream id, as the stored envelope text. The relay wakes
at once after a local commit, polls otherwise, and keeps its checkpoint in PostgreSQL: after
a broker outage or a restart it resumes where it stopped (at least once; consumers
deduplicate by `event_id`).

PostgreSQL is the source of truth, the broker a copy. The relay remembers, per partition,
the offset its records reached. A broker that answers lower offsets than those, or that no
longer has the topic, has lost history (an in-memory broker restarted, a topic deleted): the
relay then recreates the topic with the configured partitions and publishes the whole log
again. It checks on every publish and every few seconds while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from shared.messaging.kafka import (
    DEFAULT_PARTITIONS,
    Delivered,
    OutboundMessage,
    Publisher,
    TopicState,
    stored_headers,
)
from shared.model.envelope import format_time
from shared.resilience.faults import is_transient
from shared.resilience.retry import Backoff, Pacer
from shared.storage.checkpoints import load_checkpoint, save_checkpoint
from shared.storage.eventstore import START, EventStore, StoredEvent
from shared.storage.outbox_offsets import Marks, forget_marks, load_marks, save_marks

__all__ = ["CHECKPOINT", "BrokerLostHistory", "OutboxRelay", "lost_history"]

log = structlog.get_logger(__name__)

PUBLISHED = Counter("rapport_outbox_published_total", "Events published by the relay", ["service"])
FAILURES = Counter("rapport_outbox_failures_total", "Failed publish attempts", ["service"])
REFILLS = Counter(
    "rapport_outbox_refills_total",
    "Times the relay found the broker had lost history and published the log again",
    ["service"],
)
BATCH_SIZE = Gauge(
    "rapport_outbox_last_batch_size", "Size of the last batch published", ["service"]
)

CHECKPOINT = "outbox"
# After a failed refill (the broker or database away), the next try comes a second later.
REFILL_BACKOFF = Backoff(first=1.0, most=1.0)


class BrokerLostHistory(Exception):
    """The broker holds less of the topic than the relay published to it."""


def lost_history(marks: Marks, state: TopicState | None) -> str | None:
    """Why the broker's view of the topic proves it lost records we published, or None."""
    if not marks:
        return None
    if state is None:
        return "the topic is gone"
    for partition, mark in sorted(marks.items()):
        end = state.end_offsets.get(partition)
        if end is None:
            return f"partition {partition} is gone"
        if end < mark:
            return f"partition {partition} ends at offset {end}, we had published up to {mark}"
    return None


def _regressed(marks: Marks, delivered: Sequence[Delivered]) -> str | None:
    for record in delivered:
        mark = marks.get(record.partition)
        if mark is not None and record.offset < mark:
            return (
                f"a new record landed at offset {record.offset} of partition {record.partition},"
                f" below the {mark} we had published up to"
            )
    return None


def _reached(delivered: Sequence[Delivered]) -> Marks:
    """Per partition, the offset the broker must have reached after this publish.

    Conservative on purpose: the first offset of this publish plus one, not the last: some
    brokers (tansu) report a partition's end offset as the last batch's base offset plus one.
    Any broker that kept the records is past it; one that lost them restarts below it.
    """
    reached: Marks = {}
    for record in delivered:
        first = reached.get(record.partition)
        reached[record.partition] = (
            record.offset + 1 if first is None else min(first, record.offset + 1)
        )
    return reached


class OutboxRelay:
    """Publishes a service's committed events to its Kafka topic, and refills the topic from
    the log when the broker lost it."""

    def __init__(
        self,
        store: EventStore,
        publisher: Publisher,
        topic: str,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        ensure: Sequence[str] = (),
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        max_backoff: float = 5.0,
        check_interval: float = 5.0,
        gather: float = 0.005,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._topic = topic
        self._partitions = partitions
        self._ensure = list(dict.fromkeys([topic, *ensure]))
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._check_interval = check_interval
        self._gather = gather
        self._wake = store.appended_elsewhere.subscribe(store.appended.subscribe())
        self._service = store.producer
        self._lock = f"outbox:{store.producer}:{topic}"
        self._warned_partitions: int | None = None

    def ensure(self, topics: Sequence[str]) -> None:
        """Create (and re-create after the broker lost them) these topics too."""
        self._ensure = list(dict.fromkeys([*self._ensure, *topics]))

    @contextlib.asynccontextmanager
    async def _leader(self) -> AsyncIterator[asyncpg.Connection | None]:
        """A connection holding the relay's session lock, or None when another instance
        relays. The lock goes with the connection: a relay killed mid-batch frees it."""
        async with self._store.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock):
                yield None
                return
            try:
                yield conn
            finally:
                if not conn.is_closed():
                    try:
                        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock)
                    except Exception:  # a broken connection: closing it frees the lock
                        conn.terminate()

    def _message(self, item: StoredEvent) -> OutboundMessage:
        return OutboundMessage(
            topic=self._topic,
            key=item.stream_id.encode(),
            value=item.raw.encode(),
            headers=stored_headers(
                event_id=item.event_id,
                event_type=item.event_type,
                schema_version=item.schema_version,
                stream_id=item.stream_id,
                occurred_at=format_time(item.occurred_at),
                producer=self._service,
            ),
        )

    async def publish_pending(self) -> int:
        """Publish everything committed since the checkpoint; returns how many were sent.

        One relay per service publishes at a time (a session advisory lock, so several
        instances can run). No transaction stays open while the broker is awaited: an open
        transaction would hold back the log's horizon for every reader. Raises
        BrokerLostHistory when an acknowledged offset proves the broker lost the topic.
        """
        sent = 0
        async with self._leader() as conn:
            if conn is None:
                return 0
            checkpoint = await load_checkpoint(conn, CHECKPOINT)
            marks = await load_marks(conn, self._topic)
            while batch := await self._store.read_after(conn, checkpoint, self._batch_size):
                delivered = await self._publisher.publish([self._message(i) for i in batch])
                reason = _regressed(marks, delivered)
                if reason is not None:
                    raise BrokerLostHistory(reason)
                reached = _reached(delivered)
                marks.update({p: max(marks.get(p, 0), o) for p, o in reached.items()})
                checkpoint = batch[-1].checkpoint
                async with conn.transaction():
                    await save_checkpoint(conn, CHECKPOINT, checkpoint)
                    await save_marks(conn, self._topic, reached)
                sent += len(batch)
                PUBLISHED.labels(self._service).inc(len(batch))
                BATCH_SIZE.labels(self._service).set(len(batch))
        return sent

    async def check_broker(self) -> bool:
        """Compare what the broker holds with what we published; refill the topic if the
        broker lost history. Creates missing topics. True if it refilled."""
        await self._publisher.ensure_topics(self._ensure, self._partitions)
        state = await self._publisher.describe_topic(self._topic)
        async with self._store.pool.acquire() as conn:
            marks = await load_marks(conn, self._topic)
        reason = lost_history(marks, state)
        if reason is None:
            if state is not None and state.partitions != self._partitions:
                if self._warned_partitions != state.partitions:
                    log.warning(
                        "kafka_topic_partitions_differ",
                        topic=self._topic,
                        found=state.partitions,
                        configured=self._partitions,
                    )
                self._warned_partitions = state.partitions
            return False
        return await self.refill(reason)

    async def refill(self, reason: str, *, proven: bool = False) -> bool:
        """The broker lost the topic's history: recreate the topic if its partitions are not
        the configured ones, forget the offsets, and publish the whole log again from the
        start. Consumers deduplicate by `event_id`. False if another instance holds the relay
        or already refilled. `proven`: an acknowledged offset proved the loss (no re-check)."""
        async with self._leader() as conn:
            if conn is None:
                return False
            state = await self._publisher.describe_topic(self._topic)
            marks = await load_marks(conn, self._topic)
            if not proven and lost_history(marks, state) is None:
                return False  # another instance refilled meanwhile
            if state is None or state.partitions != self._partitions:
                await self._publisher.recreate_topic(self._topic, self._partitions)
            async with conn.transaction():
                await forget_marks(conn, self._topic)
                await save_checkpoint(conn, CHECKPOINT, START)
        await self._publisher.reset()
        REFILLS.labels(self._service).inc()
        log.warning("outbox_refill", topic=self._topic, reason=reason)
        return True

    async def run(self) -> None:
        """Relay until cancelled, backing off while the broker or database is away."""
        pacer = Backoff(first=0.1, most=self._max_backoff).pacer()
        refills = REFILL_BACKOFF.pacer()
        loop = asyncio.get_running_loop()
        next_check = loop.time()  # at start, after any failure, and every few seconds
        while True:
            self._wake.clear()
            try:
                if loop.time() >= next_check:
                    await self.check_broker()
                    next_check = loop.time() + self._check_interval
                await self.publish_pending()
                pacer.succeeded()
            except BrokerLostHistory as lost:
                await self._refill_after(lost, refills)
                continue
            except Exception as error:
                FAILURES.labels(self._service).inc()
                pause = pacer.failed()
                log.warning(
                    "outbox_publish_failed",
                    error=repr(error),
                    transient=is_transient(error),
                    retry_in=pause,
                )
                await self._publisher.reset()
                await asyncio.sleep(pause)
                next_check = loop.time()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                await asyncio.sleep(self._gather)  # let a busy log gather into one batch

    async def _refill_after(self, lost: BrokerLostHistory, pacer: Pacer) -> None:
        try:
            await self.refill(str(lost), proven=True)
        except Exception as error:
            FAILURES.labels(self._service).inc()
            log.warning("outbox_refill_failed", error=repr(error))
            await self._publisher.reset()
            await asyncio.sleep(pacer.failed())
        else:
            pacer.succeeded()
