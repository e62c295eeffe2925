"""The kernel's retry loops on the one helper: each keeps its budget and its log events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from aiokafka.errors import InvalidPartitionsError, KafkaConnectionError

from shared.messaging import inbox, kafka
from shared.messaging.inbox import Inbox
from shared.model.envelope import Envelope, seal
from shared.model.log import ConcurrencyConflict
from shared.resilience.faults import DependencyUnavailable
from shared.resilience.retry import Backoff, Retry
from shared.runtime import lifecycle
from shared.runtime.lifecycle import ServiceCore, connect_with_retry

QUICK = Backoff(first=0.0001, most=0.001)


class Logged:
    """Stands in for a module's structlog logger: keeps each event's name and fields."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _keep(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    debug = info = warning = error = _keep

    def names(self) -> list[str]:
        return [event for event, _ in self.events]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Logged:
    recorder = Logged()
    for module in (lifecycle, kafka, inbox):
        monkeypatch.setattr(module, "log", recorder)
    return recorder


class Fails:
    """An async callable that raises `error` the first `times` calls, then answers `answer`."""

    def __init__(self, times: int, error: Exception, answer: Any = None) -> None:
        self.times, self.error, self.answer = times, error, answer
        self.calls = 0

    async def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return self.answer


async def test_a_crashed_worker_is_started_again_and_each_crash_is_logged(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        lifecycle, "RESTART", Retry(attempts=None, backoff=QUICK, worth=lambda _: True)
    )
    core = ServiceCore.__new__(ServiceCore)
    core.name, core.tasks = "svc", []
    worker = Fails(2, RuntimeError("a bug"))
    core.spawn(worker, "sweeper")
    await asyncio.gather(*core.tasks)
    assert worker.calls == 3
    assert (
        logged.events
        == [("worker_crashed", {"worker": "sweeper", "error": "RuntimeError('a bug')"})] * 2
    )


async def test_a_database_away_at_start_is_waited_for_and_each_wait_is_logged(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = object()
    monkeypatch.setattr(lifecycle, "CONNECT_BACKOFF", QUICK)
    monkeypatch.setattr(lifecycle, "create_pool", Fails(2, OSError("refused"), pool))
    monkeypatch.setattr(lifecycle, "migrate", Fails(0, OSError()))
    assert await connect_with_retry("postgresql://db", "svc", [], timeout=30) is pool
    assert logged.names() == ["database_unavailable_at_start"] * 2
    assert all(fields["retry_in"] <= QUICK.most for _, fields in logged.events)


async def test_a_database_still_away_when_the_startup_time_is_spent_raises_its_error(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "create_pool", Fails(99, OSError("refused")))
    with pytest.raises(OSError, match="refused"):
        await connect_with_retry("postgresql://db", "svc", [], timeout=0.1)  # < first pause
    assert logged.names() == []


async def test_a_database_fault_that_is_not_transient_is_raised_at_once(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = Fails(99, ValueError("invalid schema name"))
    monkeypatch.setattr(lifecycle, "create_pool", create)
    with pytest.raises(ValueError):
        await connect_with_retry("postgresql://db", "svc", [], timeout=30)
    assert create.calls == 1


class FakeAdmin:
    """Kafka's admin client: unreachable for the first `unreachable` clients made."""

    made = 0
    unreachable = 0
    created: list[str] = []
    refusal: Exception | None = None

    def __init__(self, **_options: Any) -> None:
        FakeAdmin.made += 1
        self.closed = False

    async def start(self) -> None:
        if FakeAdmin.made <= FakeAdmin.unreachable:
            raise KafkaConnectionError("no broker")

    async def list_topics(self) -> list[str]:
        return ["there"]

    async def create_topics(self, new: list[Any]) -> Any:
        if FakeAdmin.refusal is not None:
            raise FakeAdmin.refusal
        FakeAdmin.created += [topic.name for topic in new]
        return type("Response", (), {"topic_errors": [(t.name, 0) for t in new]})()

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    monkeypatch.setattr(FakeAdmin, "made", 0)
    monkeypatch.setattr(FakeAdmin, "created", [])
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(kafka, "TOPICS_BACKOFF", QUICK)
    return FakeAdmin


async def test_topics_are_created_once_the_broker_answers(
    logged: Logged, admin: type[FakeAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "unreachable", 2)
    assert await kafka.create_topics("broker:9092", ["there", "new"]) == ["new"]
    assert (admin.made, admin.created) == (3, ["new"])
    assert logged.names() == ["kafka_create_topics_retry"] * 2 + ["kafka_topics_created"]


async def test_a_broker_refusal_that_is_not_retriable_is_raised_at_once(
    logged: Logged, admin: type[FakeAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "refusal", InvalidPartitionsError("zero partitions"))
    with pytest.raises(InvalidPartitionsError):
        await kafka.create_topics("broker:9092", ["new"], retry_for=30)
    assert admin.made == 1


class RacyStore:
    """An event store whose first `failures` transactions fail to record the message: they
    lose a race to a redelivery, or raise `error`."""

    producer = "svc"

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConcurrencyConflict("s-1", None, None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        yield self

    async def fetchval(self, *_args: Any) -> None:
        return None

    async def execute(self, *_args: Any) -> str:
        if self.failures:
            self.failures -= 1
            raise self.error
        return "INSERT 0 1"


def message() -> bytes:
    envelope: Envelope = seal(
        {
            "event_id": "e-1",
            "event_type": "Pinged",
            "schema_version": 1,
            "stream_id": "s-1",
            "stream_version": 1,
            "occurred_at": "2025-01-01T00:00:00.000000Z",
            "recorded_at": "2025-01-01T00:00:00.000000Z",
            "producer": "svc",
            "correlation_id": "c-1",
            "causation_id": None,
            "actor": {"role": "admin", "id": "a-1"},
            "data": {},
            "prev_hash": "0" * 64,
        }
    )
    return envelope.to_json()


async def nothing(_unit: Any, _envelope: Envelope) -> None:
    return None


class RacyUnits:
    """The units of work over a `RacyStore`, as the inbox asks for them."""

    def __init__(self, store: RacyStore) -> None:
        self.store = store

    def within(self, conn: Any) -> Any:
        return conn


async def test_a_message_that_lost_a_race_is_applied_on_a_quick_retry_and_each_is_logged(
    logged: Logged,
) -> None:
    units = RacyUnits(RacyStore(failures=2))
    consumer = Inbox(cast(Any, units), "tests", cast(Any, None), attempts=3)
    outcome = await consumer.receive("topic", b"s-1", message(), [], nothing)
    assert outcome == "applied"
    assert logged.names() == ["inbox_retry", "inbox_retry"]


async def test_a_transient_fault_past_the_inbox_budget_is_raised_for_redelivery(
    logged: Logged,
) -> None:
    store = RacyStore(failures=99, error=DependencyUnavailable("database", "restarting"))
    consumer = Inbox(cast(Any, RacyUnits(store)), "tests", cast(Any, None), attempts=2)
    with pytest.raises(DependencyUnavailable):
        await consumer.receive("topic", b"s-1", message(), [], nothing)
    assert logged.names() == ["inbox_retry", "inbox_redeliver"]
