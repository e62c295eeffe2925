"""A service's life: open its core (database, event store, vault, broker, relay, projection
runner), subscribe its consumers through an inbox, start its workers, and close it all again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.messaging.inbox import Handler, Inbox
from shared.messaging.kafka import (
    METADATA_MAX_AGE_MS,
    KafkaPublisher,
    create_topics,
    with_dead_letters,
)
from shared.messaging.outbox import OutboxRelay
from shared.model.clock import Clock, SystemClock
from shared.model.envelope import Envelope
from shared.model.projections import Projection
from shared.reads.runner import ProjectionRunner
from shared.resilience.retry import Backoff, Retry, retrying
from shared.runtime.config import Settings
from shared.runtime.parked import ParkedEvents
from shared.security.crypto import decode_master_key
from shared.security.tokens import TokenVerifier
from shared.storage.db import create_pool, migrate
from shared.storage.eventstore import EventStore
from shared.storage.idempotency import pruner
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitsOfWork
from shared.usecases.idempotency import IdempotencyKeys

__all__ = [
    "CONSUMER_BATCH",
    "MissingSecret",
    "ServiceCore",
    "Subscription",
    "Worker",
    "connect_with_retry",
    "open_core",
    "require",
    "start_core",
]

log = structlog.get_logger(__name__)


class MissingSecret(RuntimeError):
    """A service outside `rapport dev` was started without its secrets."""


@dataclass
class Subscription:
    """Events of some topics handled idempotently under one consumer name."""

    topics: Sequence[str]
    consumer: str
    handler: Handler
    # The event types the handler acts on (None: all). Others are checked and acknowledged
    # without touching the database.
    handles: frozenset[str] | None = None


Worker = Callable[[], Awaitable[None]]
CONSUMER_BATCH = 200  # records handled per offset commit
# A crashed background worker is started again a second later, however often it crashes.
RESTART = Retry(attempts=None, backoff=Backoff(first=1.0, most=1.0), worth=lambda _: True)
# While the database is away at start, connecting is tried again, up to the startup timeout.
CONNECT_BACKOFF = Backoff(first=0.2, most=5.0)


@dataclass
class ServiceCore:
    """What a running service holds; built by `open_core`, closed by `close`."""

    name: str
    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    store: EventStore
    vault: KeyVault
    units: PostgresUnitsOfWork
    publisher: KafkaPublisher
    broker: KafkaBroker
    runner: ProjectionRunner
    relay: OutboxRelay | None
    tokens: TokenVerifier
    idempotency: IdempotencyKeys
    topics: list[str] = field(default_factory=list)  # what it creates: its own and consumed
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumers: dict[str, tuple[Inbox, Handler]] = field(default_factory=dict)

    @property
    def parked(self) -> ParkedEvents:
        """The service's parked events, with what can apply them again."""
        return ParkedEvents(self.store, self.runner.projection, self.consumers)

    async def database_ok(self) -> bool:
        """The database answers."""
        return bool(await self.pool.fetchval("SELECT 1"))

    async def broker_ok(self) -> bool:
        """The broker answers."""
        return bool(await self.broker.ping(timeout=2.0))

    def subscribe(self, subscription: Subscription) -> None:
        """Consume the subscription's topics through an inbox (before `start_core`)."""
        inbox = Inbox(
            self.units, subscription.consumer, self.publisher, handles=subscription.handles
        )
        self.consumers[subscription.consumer] = (inbox, subscription.handler)
        consumed = with_dead_letters(subscription.topics)
        self.topics = list(dict.fromkeys([*self.topics, *consumed]))
        if self.relay is not None:
            self.relay.ensure(consumed)

        @self.broker.subscriber(
            *subscription.topics,
            title=f"{subscription.consumer}:consume",
            description="Contract envelopes, consumed idempotently by event_id, in batches; "
            "failures are parked and go to <topic>.dlq.",
            group_id=f"rapport-{subscription.consumer}",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            fetch_max_wait_ms=50,
            batch=True,
            max_records=CONSUMER_BATCH,
            batch_timeout_ms=100,
        )
        async def consume(message: KafkaMessage) -> None:
            """A batch in partition order; its offsets are committed once, when every record
            was handled. A transient failure rewinds the batch (the inbox skips what was
            applied)."""
            records = message.raw_message
            assert isinstance(records, tuple)
            for record in records:
                assert isinstance(record, ConsumerRecord)
                await inbox.receive(
                    record.topic, record.key, record.value, record.headers, subscription.handler
                )

    def spawn(self, worker: Worker, name: str) -> None:
        """Run a background worker, restarting it a second after a crash."""

        def crashed(error: BaseException, _attempt: int, _pause: float) -> None:
            log.error("worker_crashed", worker=name, error=repr(error))

        async def guarded() -> None:
            await retrying(worker, RESTART, on_retry=crashed)

        self.tasks.append(asyncio.create_task(guarded(), name=f"{self.name}:{name}"))

    async def close(self) -> None:
        """Stop workers, consumers, the producer and the pool."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        with contextlib.suppress(Exception):
            await self.publisher.stop()
        await self.pool.close()


def require(settings: Settings) -> tuple[str, str, str, str]:
    """The database, broker, JWT secret and master key, or MissingSecret."""
    missing = [
        name
        for name, value in (
            ("RAPPORT_DATABASE_URL", settings.database_url),
            ("RAPPORT_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
            ("RAPPORT_JWT_SECRET", settings.jwt_secret),
            ("RAPPORT_MASTER_KEY", settings.master_key),
        )
        if not value
    ]
    if missing:
        raise MissingSecret(f"missing configuration: {', '.join(missing)}")
    assert settings.database_url and settings.kafka_bootstrap
    assert settings.jwt_secret and settings.master_key
    return settings.database_url, settings.kafka_bootstrap, settings.jwt_secret, settings.master_key


async def connect_with_retry(
    database_url: str,
    schema: str,
    migrations: Sequence[str],
    timeout: float,
    *,
    pool_size: int = 10,
) -> asyncpg.Pool:
    """A migrated pool of up to `pool_size` connections; while the database is away at start,
    try again for `timeout` seconds."""

    def unavailable(error: BaseException, _attempt: int, pause: float) -> None:
        log.warning("database_unavailable_at_start", error=repr(error), retry_in=pause)

    pool = await retrying(
        lambda: create_pool(database_url, schema, max_size=pool_size),
        Retry(attempts=None, seconds=timeout, backoff=CONNECT_BACKOFF),
        on_retry=unavailable,
    )
    try:
        await migrate(pool, schema, migrations)
    except BaseException:
        await pool.close()
        raise
    return pool


async def open_core(
    name: str,
    settings: Settings,
    *,
    migrations: str,
    projections: Sequence[Projection],
    topic: str | None,
    clock: Clock | None = None,
) -> ServiceCore:
    """Connect, migrate, and wire the kernel for one service (nothing started yet)."""
    database_url, bootstrap, secret, master = require(settings)
    clock = clock or SystemClock()
    pool = await connect_with_retry(
        database_url,
        name,
        [migrations],
        settings.startup_timeout,
        pool_size=settings.db_pool_size,
    )
    store = EventStore(pool, name, clock)
    master_key = decode_master_key(master)
    publisher = KafkaPublisher(bootstrap, f"rapport-{name}")
    broker = KafkaBroker(
        bootstrap,
        client_id=f"rapport-{name}",
        logger=None,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )
    if topic:
        broker.publisher(  # documents what the outbox relay publishes (AsyncAPI)
            topic,
            title=f"{topic}:publish",
            description="Every event of this service's log, keyed by engagement id, with the "
            "contract's headers (event_type, schema_version, CloudEvents ce_*).",
            schema=Envelope,
        )
    vault = KeyVault(pool, master_key)
    relay = (
        OutboxRelay(
            store,
            publisher,
            topic,
            partitions=settings.kafka_partitions,
            ensure=with_dead_letters([topic]),
            poll_interval=settings.outbox_poll_seconds,
        )
        if topic
        else None
    )
    return ServiceCore(
        name=name,
        settings=settings,
        clock=clock,
        pool=pool,
        store=store,
        vault=vault,
        units=PostgresUnitsOfWork(store, vault),
        publisher=publisher,
        broker=broker,
        runner=ProjectionRunner(store, projections, segments=settings.projection_segments),
        relay=relay,
        topics=with_dead_letters([topic] if topic else []),
        tokens=TokenVerifier(secret, max_ttl=settings.max_token_ttl),
        idempotency=IdempotencyKeys(master_key, retention=settings.idempotency_retention),
    )


async def start_core(core: ServiceCore, workers: dict[str, Worker] | None = None) -> None:
    """Create topics, start consumers and the commit signal; with `background` (the default)
    also the relay, the projection runner, the idempotency pruner and the service's workers."""
    assert core.settings.kafka_bootstrap
    await create_topics(
        core.settings.kafka_bootstrap,
        core.topics,
        core.settings.kafka_partitions,
        retry_for=core.settings.startup_timeout,
    )
    await core.broker.start()
    runner = core.runner

    def others() -> bool:  # an HTTP-only instance cannot count the others: it always tells
        return runner.others or not core.settings.background

    core.spawn(lambda: core.store.commits.run(others), "commit-signal")
    if not core.settings.background:
        log.info("background_work_left_to_other_instances", service=core.name)
        return
    if core.relay is not None:
        core.spawn(core.relay.run, "outbox")
    core.spawn(core.runner.run, "projections")
    retention, every = core.idempotency.retention, core.settings.idempotency_prune_seconds
    core.spawn(pruner(core.pool, retention, every=every), "idempotency-pruner")
    for worker_name, worker in (workers or {}).items():
        core.spawn(worker, worker_name)
