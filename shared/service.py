"""The runtime every service is composed from: database, event store, relay, projections,
Kafka consumers with an inbox, background workers, and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog
import uvicorn
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from shared.admin_http import admin_routes
from shared.audit_http import audit_routes
from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.crypto import KeyVault, decode_master_key
from shared.db import create_pool, migrate
from shared.envelope import Envelope
from shared.eventstore import EventStore
from shared.faults import is_transient
from shared.http import create_app, document_problems
from shared.inbox import Handler, Inbox
from shared.kafka import (
    METADATA_MAX_AGE_MS,
    KafkaPublisher,
    all_topics_with_dlq,
    create_topics,
)
from shared.outbox import OutboxRelay
from shared.parked_admin import ParkedEvents
from shared.projection_runner import CommitSignal, ProjectionRunner
from shared.projections import Projection

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


@dataclass
class ServiceCore:
    """What a running service holds; built by `open_core`, closed by `close`."""

    name: str
    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    store: EventStore
    vault: KeyVault
    publisher: KafkaPublisher
    broker: KafkaBroker
    runner: ProjectionRunner
    relay: OutboxRelay | None
    jwt_secret: str
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
            self.store, subscription.consumer, self.publisher, handles=subscription.handles
        )
        self.consumers[subscription.consumer] = (inbox, subscription.handler)

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

        async def guarded() -> None:
            while True:
                try:
                    await worker()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.error("worker_crashed", worker=name, error=repr(error))
                    await asyncio.sleep(1.0)

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
    database_url: str, schema: str, migrations: Sequence[str], timeout: float
) -> asyncpg.Pool:
    """A migrated pool; while the database is away at start, try again for `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.2
    while True:
        try:
            pool = await create_pool(database_url, schema)
        except Exception as error:
            if not is_transient(error) or loop.time() + delay > deadline:
                raise
            log.warning("database_unavailable_at_start", error=repr(error), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
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
    pool = await connect_with_retry(database_url, name, [migrations], settings.startup_timeout)
    store = EventStore(pool, name, clock)
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
    relay = (
        OutboxRelay(
            store,
            publisher,
            topic,
            partitions=settings.kafka_partitions,
            ensure=all_topics_with_dlq(),
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
        vault=KeyVault(pool, decode_master_key(master)),
        publisher=publisher,
        broker=broker,
        runner=ProjectionRunner(store, projections, segments=settings.projection_segments),
        relay=relay,
        jwt_secret=secret,
    )


async def start_core(core: ServiceCore, workers: dict[str, Worker] | None = None) -> None:
    """Create topics, start consumers, the relay, the projection runner and other workers."""
    assert core.settings.kafka_bootstrap
    await create_topics(
        core.settings.kafka_bootstrap,
        all_topics_with_dlq(),
        core.settings.kafka_partitions,
        retry_for=core.settings.startup_timeout,
    )
    await core.broker.start()
    if core.relay is not None:
        core.spawn(core.relay.run, "outbox")
    core.spawn(core.runner.run, "projections")
    core.spawn(CommitSignal(core.store, core.runner.channel).run, "commit-signal")
    for worker_name, worker in (workers or {}).items():
        core.spawn(worker, worker_name)


A = TypeVar("A")


def service_app(
    core_factory: Callable[[], Awaitable[ServiceCore]],
    application: Callable[[ServiceCore], A],
    build_routes: Callable[[FastAPI, Callable[[], A], Callable[[], str]], None],
    *,
    name: str,
    description: str,
    workers: Callable[[ServiceCore, A], dict[str, Worker]] | None = None,
    subscriptions: Callable[[A], Sequence[Subscription]] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan opens the service core, builds the service's application
    object from it once, and closes the core again.

    `build_routes(app, application, jwt_secret)` attaches the routes; both callables answer
    once the app runs. `subscriptions` and `workers` say what else runs beside the routes.
    """
    holder: dict[str, Any] = {}

    def current() -> ServiceCore:
        core: ServiceCore = holder["core"]
        return core

    def current_application() -> A:
        built: A = holder["application"]
        return built

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = await core_factory()
        built = application(core)
        holder["core"] = core
        holder["application"] = built
        app.state.core = core
        app.state.application = built
        for subscription in subscriptions(built) if subscriptions else ():
            core.subscribe(subscription)
        await start_core(core, workers(core, built) if workers else None)
        log.info("service_started", service=name)
        try:
            yield
        finally:
            await core.close()
            log.info("service_stopped", service=name)

    async def database_ok() -> bool:
        return await current().database_ok()

    async def broker_ok() -> bool:
        return await current().broker_ok()

    async def drop_pooled_connections() -> None:
        await current().pool.expire_connections()

    app = create_app(
        name,
        health_checks={"database": database_ok, "broker": broker_ok},
        lifespan=lifespan,
        description=description,
        on_connection_lost=drop_pooled_connections,
    )
    build_routes(app, current_application, lambda: current().jwt_secret)
    audit_routes(app, current)
    admin_routes(app, lambda: current().parked, lambda: current().jwt_secret)
    document_problems(app)

    @app.get("/asyncapi.json", tags=["operations"], include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        """The service's Kafka interface (AsyncAPI 3), generated by FastStream."""
        specification = AsyncAPI(
            current().broker, title=f"Rapport {name}", description=description
        ).to_specification()
        return JSONResponse(specification.to_jsonable())

    return app


def embedded_server(
    app: FastAPI, host: str, port: int, *, log_level: str = "warning"
) -> uvicorn.Server:
    """A uvicorn server to run inside another program's event loop (`await server.serve()`);
    set `should_exit` to stop it gracefully."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on")
    return _QuietServer(config)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_forever(app: FastAPI, host: str, port: int, *, log_level: str = "info") -> None:
    """Entry point of `python -m services.<name>`."""
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def main(name: str, create_app: Callable[[Settings], FastAPI]) -> None:
    """`python -m services.<name>`: configure logging and serve the app from settings."""
    from shared.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        require(settings)
    except MissingSecret as error:
        print(f"rapport {name}: refusing to start: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    run_forever(
        create_app(settings), settings.host, settings.port_of(name), log_level=settings.log_level
    )
