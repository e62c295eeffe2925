"""Schema evolution: GoalSet v1 rows stay as stored, read as v2, and replay the same views."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from rapport.infra import Endpoints
from services.intake.domain import intake
from services.intake.domain.events import (
    AgreementSigned,
    BaselineAssessed,
    ClientCommitted,
    ClientDetails,
    Goal,
    GoalSet,
    GoalSetV1,
    IntakeStarted,
    goal_direction,
    registry,
)
from services.intake.projections import PROJECTIONS
from shared.reads.audit import live_digests, replay, verify_events
from shared.model.clock import SystemClock
from shared.storage.db import migrate
from shared.model.envelope import Actor
from shared.model.events import DomainEvent
from shared.storage.eventstore import EventMetadata, EventStore
from shared.reads.runner import ProjectionRunner
from shared.model.projections import load_document

STREAM = str(uuid.uuid4())
CLIENT = str(uuid.uuid4())
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


GOALS = [
    ("g-1", "Run 5k", "km", 1.0, 5.0),
    ("g-2", "Fewer late nights", "nights/week", 5.0, 1.0),
    ("g-3", "Keep reading", "books/month", 2.0, 2.0),
]


def history(goal_versions: tuple[int, ...]) -> list[DomainEvent]:
    """One intake whose goals are written at the given schema versions."""
    events: list[DomainEvent] = [
        IntakeStarted(
            engagement_id=STREAM,
            client_id=CLIENT,
            coach_id="coach-upcast",
            supervisor_id=None,
            client=ClientDetails(name="Ada", email="ada@example.org"),
        ),
        BaselineAssessed(assessment_id="a-1", instrument="wellbeing", scores={"energy": 4}),
    ]
    for (goal_id, title, measure, baseline, target), version in zip(
        GOALS, goal_versions, strict=True
    ):
        fields = {"goal_id": goal_id, "title": title, "measure": measure}
        if version == 1:
            events.append(GoalSetV1(**fields, baseline=baseline, target=target))
        else:
            direction = goal_direction(baseline, target)
            events.append(GoalSet(**fields, baseline=baseline, target=target, direction=direction))
    events.append(
        AgreementSigned(
            role_explained=True,
            confidentiality_limits_acknowledged=True,
            signed_by_client=True,
            signed_by_coach=True,
            contact_channels=["video"],
            contact_hours="weekdays",
            session_cadence_days=7,
        )
    )
    events.append(
        ClientCommitted(
            engagement_id=STREAM,
            client_id=CLIENT,
            coach_id="coach-upcast",
            supervisor_id=None,
            goals=[
                Goal(goal_id=g, title=t, measure=m, baseline=b, target=x) for g, t, m, b, x in GOALS
            ],
            baselines=[],
            session_cadence_days=7,
            contact_channels=["video"],
            contact_hours="weekdays",
            committed_at=T0 + timedelta(hours=1),
        )
    )
    return events


async def write(pool: asyncpg.Pool, events: list[DomainEvent]) -> EventStore:
    store = EventStore(pool, "intake", SystemClock())
    for version, event in enumerate(events):
        metadata = EventMetadata(
            actor=Actor(role="coach", id="coach-upcast"),
            correlation_id="c",
            occurred_at=T0 + timedelta(minutes=version),
        )
        async with store.transaction() as conn:
            await store.append(conn, STREAM, version, [event], metadata)
    return store


async def schema_of(pool: asyncpg.Pool) -> str:
    return str(await pool.fetchval("SELECT current_schema()"))


async def test_a_log_mixing_goal_versions_replays_to_the_same_views_as_an_all_current_log(
    infra: Endpoints, scratch_pool: asyncpg.Pool
) -> None:
    mixed_schema = await schema_of(scratch_pool)
    mixed = await write(scratch_pool, history((1, 2, 1)))
    current_pool = await asyncpg.create_pool(
        infra.database_url, server_settings={"search_path": mixed_schema + "_v2"}
    )
    # a second scratch schema holding the same history written entirely by today's code
    async with scratch_pool.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA {mixed_schema}_v2")
    await migrate(current_pool, f"{mixed_schema}_v2", [])
    try:
        current = await write(current_pool, history((2, 2, 2)))
        await ProjectionRunner(mixed, PROJECTIONS).catch_up_all()
        await ProjectionRunner(current, PROJECTIONS).catch_up_all()

        first = await replay(infra.database_url, mixed_schema, PROJECTIONS)
        second = await replay(infra.database_url, mixed_schema, PROJECTIONS)
        of_current = await replay(infra.database_url, f"{mixed_schema}_v2", PROJECTIONS)
        live = await live_digests(infra.database_url, mixed_schema, PROJECTIONS)
        assert first.digests == second.digests == of_current.digests == live

        async with scratch_pool.acquire() as conn:
            found = await load_document(conn, "intake_view", STREAM)
        assert found is not None
        view, version = found
        assert version == 7
        assert [goal["direction"] for goal in view["goals"]] == ["increase", "decrease", "maintain"]
    finally:
        await current_pool.close()
        async with scratch_pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {mixed_schema}_v2 CASCADE")


async def test_old_rows_stay_as_stored_and_every_reader_sees_them_at_the_current_version(
    infra: Endpoints, scratch_pool: asyncpg.Pool
) -> None:
    schema = await schema_of(scratch_pool)
    await write(scratch_pool, history((1, 1, 2)))
    query = "SELECT schema_version, envelope FROM events ORDER BY global_position"
    before = [tuple(row) for row in await scratch_pool.fetch(query)]

    await replay(infra.database_url, schema, PROJECTIONS)

    assert [tuple(row) for row in await scratch_pool.fetch(query)] == before
    stored_goals = [
        await scratch_pool.fetchval(
            "SELECT schema_version FROM events WHERE event_type = 'GoalSet' AND envelope::text"
            " LIKE $1",
            f'%"goal_id":"{goal_id}"%',
        )
        for goal_id, *_ in GOALS
    ]
    assert stored_goals == [1, 1, 2]
    async with scratch_pool.acquire() as conn:
        assert (await verify_events(conn, schema)).intact
        store = EventStore(scratch_pool, "intake", SystemClock())
        async with store.snapshot() as snapshot:
            envelopes = [e async for e in store.read_stream(snapshot, STREAM)]
    assert [e.schema_version for e in envelopes if e.event_type == "GoalSet"] == [1, 1, 2]
    assert all("direction" not in e.data for e in envelopes if e.schema_version == 1)

    # the decider reads them through the registry: v1 arrives as a v2 GoalSet
    loaded = [registry.load(envelope) for envelope in envelopes]
    goals = [event for event in loaded if isinstance(event, GoalSet)]
    assert [goal.direction for goal in goals] == ["increase", "decrease", "maintain"]
    state = intake.initial()
    for event in loaded[:-2]:  # up to the goals, before the agreement and commitment
        state = intake.evolve(state, event)
    assert [goal.goal_id for goal in state.goals] == ["g-1", "g-2", "g-3"]
