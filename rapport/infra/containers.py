"""PostgreSQL and Apache Kafka (KRaft) in containers, through testcontainers, where a Docker
engine answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog

from rapport.infra.processes import free_port, register_cleanup, teardown_log, unregister_cleanup
from rapport.infra.tansu import wait_for_broker

__all__ = ["docker_answers", "kafka_container", "postgres_container"]

log = structlog.get_logger(__name__)

POSTGRES_IMAGE = "postgres:17"
KAFKA_IMAGE = "apache/kafka:3.9.0"
_CONTAINER_BROKER_READY_TIMEOUT = 90.0  # seconds, a JVM broker in a container


def docker_answers() -> bool:
    """Whether a Docker engine answers a ping within a couple of seconds."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def postgres_container() -> Iterator[str]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_IMAGE, username="rapport", password="rapport", dbname="rapport", driver=None
    )
    token = id(container)
    register_cleanup(token, container.stop)
    try:
        container.start()
        dsn = str(container.get_connection_url())
        log.info("infra.postgres.container_started", image=POSTGRES_IMAGE, dsn=dsn)
        yield dsn
    finally:
        unregister_cleanup(token)
        with contextlib.suppress(Exception):
            container.stop()
        teardown_log("info", "infra.postgres.container_stopped")


@contextlib.contextmanager
def kafka_container() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    # testcontainers' KafkaContainer drives Confluent's start scripts; the apache/kafka image is
    # configured through KAFKA_* variables instead, on a fixed host port it can advertise.
    host_port = free_port()
    container = DockerContainer(KAFKA_IMAGE)
    host = str(container.get_docker_client().host())
    container.with_bind_ports(9092, host_port)
    for key, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{host_port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_NUM_PARTITIONS": "3",
    }.items():
        container.with_env(key, value)
    token = id(container)
    register_cleanup(token, container.stop)
    try:
        container.start()
        bootstrap = f"{host}:{host_port}"

        def died() -> str | None:
            try:
                container.reload()
                status = str(container.status)
            except Exception:
                return None
            return f"Kafka container exited ({status})" if status == "exited" else None

        wait_for_broker(bootstrap, _CONTAINER_BROKER_READY_TIMEOUT, died)
        log.info("infra.kafka.container_started", image=KAFKA_IMAGE, bootstrap=bootstrap)
        yield bootstrap
    finally:
        unregister_cleanup(token)
        with contextlib.suppress(Exception):
            container.stop()
        teardown_log("info", "infra.kafka.container_stopped")
