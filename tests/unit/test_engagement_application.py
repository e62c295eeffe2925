"""Engagement's use cases over in-memory ports: commands through `EngagementService.act` with
the access policy, the intake's events, and the reads, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.engagement.application.services import EngagementService
from services.engagement.domain import commands
from services.engagement.domain.events import FACTORS
from services.engagement.projections import PROJECTIONS
from services.engagement.projections.trust_view import trust_view
from shared.model.clock import FixedClock
from shared.model.errors import InvalidCommand, NotFound
from shared.model.events import Command
from shared.security.tokens import PermissionDenied, Principal
from shared.usecases.application import Sent
from tests.fakes import MemoryEventStore, ports
from tests.integration.webhook_support import client_committed

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
COACH = Principal("coach", "co-1")
CLIENT = Principal("client", "cl-1")
SUPERVISOR = Principal("supervisor", "su-1")


async def opened() -> tuple[EngagementService, MemoryEventStore]:
    """An engagement opened by the intake's ClientCommitted, as the consumer hands it over."""
    clock = FixedClock(AT)
    units, documents, vault, store = ports("engagement", clock, PROJECTIONS)
    service = EngagementService(units, documents, vault, clock)
    committed = client_committed("e-1", "co-1", "cl-1", at=AT, supervisor_id="su-1")
    async with service.units.transaction() as unit:
        await service.on_intake_event(unit, committed)
    return service, store


async def act(
    service: EngagementService,
    principal: Principal,
    who: str,
    command: type[Command],
    fields: dict[str, Any] | None = None,
    engagement_id: str = "e-1",
) -> dict[str, Any]:
    return await service.act(Sent(principal, engagement_id, command, fields or {}, who))


async def test_client_committed_opens_the_engagement_once() -> None:
    service, store = await opened()
    again = client_committed("e-1", "co-1", "cl-1", at=AT, supervisor_id="su-1")
    async with service.units.transaction() as unit:
        await service.on_intake_event(unit, again)
    assert [e.event_type for e in store.events("e-1")] == ["EngagementOpened"]
    view = await service.read(CLIENT, "e-1")
    assert view["stage"] == "commitment" and view["version"] == 1


async def test_a_homework_is_assigned_claimed_and_verified_by_the_right_parties() -> None:
    service, store = await opened()
    await act(service, COACH, "coach", commands.StartPlan)
    due = AT + timedelta(days=3)
    fields = {"homework_id": "h-1", "title": "Walk", "due_at": due}
    with pytest.raises(PermissionDenied):
        await act(service, CLIENT, "coach", commands.AssignHomework, fields)
    assigned = await act(service, COACH, "coach", commands.AssignHomework, fields)
    assert assigned["stream_version"] == 3
    with pytest.raises(PermissionDenied):
        await act(service, COACH, "client", commands.ClaimHomework, {"homework_id": "h-1"})
    await act(service, CLIENT, "client", commands.ClaimHomework, {"homework_id": "h-1"})
    verified = {"homework_id": "h-1", "outcome": "confirmed"}
    await act(service, COACH, "coach", commands.VerifyHomework, verified)
    assert [e.event_type for e in store.events("e-1")][-2:] == [
        "HomeworkClaimed",
        "HomeworkVerified",
    ]
    trust = await service.read(SUPERVISOR, "e-1", projection=trust_view)
    assert trust["version"] == len(store.events("e-1"))


async def test_the_sender_is_recorded_and_only_the_parties_may_report_a_violation() -> None:
    service, store = await opened()
    report = {
        "violation_id": "v-1",
        "violated_by": "client",
        "kind": "outside_agreed_contact",
        "description": "late calls",
    }
    with pytest.raises(PermissionDenied):
        await act(
            service, Principal("supervisor", "su-2"), "reporter", commands.ReportViolation, report
        )
    await act(service, SUPERVISOR, "reporter", commands.ReportViolation, report)
    assert store.events("e-1")[-1].data["reported_by"] == "supervisor"


async def test_a_check_in_is_rated_by_its_sender_and_an_admin_must_name_the_rater() -> None:
    service, store = await opened()
    await act(service, COACH, "coach", commands.StartPlan)
    ratings = dict.fromkeys(FACTORS, 4)
    await act(
        service,
        CLIENT,
        "party",
        commands.RecordRelationshipCheckIn,
        {"checkin_id": "c-1", "ratings": ratings},
    )
    assert store.events("e-1")[-1].data["rater"] == "client"
    with pytest.raises(InvalidCommand):
        await act(
            service,
            COACH,
            "party",
            commands.RecordRelationshipCheckIn,
            {"checkin_id": "c-2", "ratings": ratings, "rater": "client"},
        )


async def test_an_unknown_engagement_is_not_found_and_strangers_read_nothing() -> None:
    service, _ = await opened()
    with pytest.raises(NotFound):
        await act(service, COACH, "coach", commands.StartPlan, engagement_id="nope")
    with pytest.raises(PermissionDenied):
        await service.read(Principal("client", "someone"), "e-1")
    with pytest.raises(NotFound):
        await service.read(COACH, "nope")


async def test_a_coach_lists_their_engagements_by_stage_and_reads_their_roll_up() -> None:
    service, _ = await opened()
    listed = await service.coach_engagements(COACH, "co-1", "commitment")
    assert [item["engagement_id"] for item in listed["items"]] == ["e-1"]
    assert (await service.coach_engagements(COACH, "co-1", "graduation"))["items"] == []
    with pytest.raises(PermissionDenied):
        await service.coach_engagements(Principal("coach", "co-2"), "co-1", None)
    rollup = await service.coach_relationship(SUPERVISOR, "co-1")
    assert rollup["coach_id"] == "co-1"
    with pytest.raises(PermissionDenied):
        await service.coach_relationship(CLIENT, "co-1")


async def test_a_session_in_the_future_is_judged_against_the_services_clock() -> None:
    service, store = await opened()
    held = {"session_id": "s-1", "held_at": AT + timedelta(days=2), "duration_minutes": 50}
    with pytest.raises(InvalidCommand, match="once it was held"):
        await act(service, COACH, "coach", commands.HoldSession, held)
    assert [e.event_type for e in store.events("e-1")] == ["EngagementOpened"]
    assert isinstance(service.clock, FixedClock)
    service.clock.set(AT + timedelta(days=2, minutes=1))  # the session is over now
    await act(service, COACH, "coach", commands.HoldSession, held)
    assert store.events("e-1")[-1].event_type == "SessionHeld"


async def test_a_command_on_an_unknown_engagement_names_it_like_every_other_404() -> None:
    service, _ = await opened()
    with pytest.raises(NotFound, match=r"^no engagement e-404$"):
        await act(service, COACH, "coach", commands.StartPlan, engagement_id="e-404")
