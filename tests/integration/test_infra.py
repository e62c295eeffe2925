"""The embedded infrastructure really starts, really works and really stops."""

from __future__ import annotations

import asyncio
import socket
import uuid
from urllib.parse import parse_qs, urlsplit

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from rapport.infra import running_infrastructure
from shared.messaging.kafka import create_topics


def _processes_mentioning(fragment: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(fragment in a for a in cmdline):
            found.append(proc)
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _accepts_tcp(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def test_embedded_postgres_and_broker_work_and_are_gone_after_the_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("RAPPORT_KAFKA_BOOTSTRAP", raising=False)
    topic = f"infra.smoke.{uuid.uuid4().hex[:8]}"

    with running_infrastructure() as endpoints:
        socket_dir = parse_qs(urlsplit(endpoints.database_url).query)["host"][0]
        postgres_processes = _processes_mentioning(socket_dir)
        broker_processes = _processes_mentioning(f"tcp://{endpoints.kafka_bootstrap}")
        assert postgres_processes, "no postgres process found for the embedded server"
        assert broker_processes, "no tansu process found for the embedded broker"

        conn = await asyncpg.connect(endpoints.database_url)
        try:
            assert await conn.fetchval("select 1") == 1
        finally:
            await conn.close()

        await create_topics(endpoints.kafka_bootstrap, [topic], partitions=3)
        await create_topics(endpoints.kafka_bootstrap, [topic], partitions=3)  # idempotent

        producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b'{"hello": "rapport"}', key=b"engagement-1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=endpoints.kafka_bootstrap,
            group_id=f"infra-smoke-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            # tansu holds the first JoinGroup for about half the session timeout (5 s by
            # default); 6 s is the smallest session a real Kafka broker accepts by default.
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        assert message.key == b"engagement-1"
        assert message.value == b'{"hello": "rapport"}'

    assert not _accepts_tcp(endpoints.kafka_bootstrap)
    psutil.wait_procs(postgres_processes + broker_processes, timeout=5)
    assert not [p for p in broker_processes if _alive(p)]
    assert not [p for p in postgres_processes if _alive(p)]
    with pytest.raises(OSError):
        await asyncpg.connect(endpoints.database_url, timeout=5)
