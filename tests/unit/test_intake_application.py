"""Intake's use cases over in-memory ports: the flow to ClientCommitted, who may run it, reads
and erasure, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.intake.application.services import IntakeService
from services.intake.domain import commands
from services.intake.projections import PROJECTIONS
from shared.model.clock import FixedClock
from shared.model.errors import NotFound
from shared.security.tokens import PermissionDenied, Principal
from shared.usecases.application import Sent
from tests.fakes import MemoryEventStore, ports

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
COACH = Principal("coach", "co-1")
AGREEMENT = {
    "role_explained": True,
    "confidentiality_limits_acknowledged": True,
    "signed_by_client": True,
    "signed_by_coach": True,
    "contact_channels": ["video"],
    "contact_hours": "weekdays",
    "session_cadence_days": 7,
}


def intake() -> tuple[IntakeService, MemoryEventStore]:
    units, documents, vault, store = ports("intake", FixedClock(AT), PROJECTIONS)
    return IntakeService(units, documents, vault, FixedClock(AT)), store


async def start(service: IntakeService, principal: Principal = COACH) -> dict[str, Any]:
    fields = {
        "engagement_id": "i-1",
        "client_id": "cl-1",
        "coach_id": "co-1",
        "supervisor_id": None,
        "client": {"name": "Ada Lovelace", "email": "ada@example.org"},
    }
    reply = {"engagement_id": "i-1", "client_id": "cl-1"}
    return await service.act(
        Sent(principal, "i-1", commands.StartIntake, fields, "coach", None, reply)
    )


async def step(
    service: IntakeService, command: type[Any], fields: dict[str, Any], who: Principal = COACH
) -> dict[str, Any]:
    return await service.act(Sent(who, "i-1", command, fields, "coach"))


async def test_an_intake_runs_from_its_start_to_client_committed() -> None:
    service, store = intake()
    assert await start(service) == {
        "engagement_id": "i-1",
        "client_id": "cl-1",
        "stream_version": 1,
    }
    await step(
        service,
        commands.AssessBaseline,
        {"assessment_id": "a", "instrument": "w", "scores": {"x": 1}},
    )
    await step(
        service,
        commands.SetGoal,
        {"goal_id": "g", "title": "Run", "measure": "km", "baseline": 1, "target": 5},
    )
    await step(service, commands.SignAgreement, AGREEMENT)
    committed = await step(service, commands.CommitClient, {})
    events = store.events("i-1")
    assert committed["stream_version"] == len(events) == 5
    assert events[-1].event_type == "ClientCommitted"
    assert events[-1].occurred == AT  # the command's time is the clock's, once


async def test_personal_fields_are_sealed_in_the_log_and_revealed_to_the_coach() -> None:
    service, store = intake()
    await start(service)
    assert "Ada" not in store.events("i-1")[0].to_json().decode()
    view = await service.read(COACH, "i-1")
    assert view["client"]["name"] == "Ada Lovelace" and view["erased"] is False
    assert (await service.read(Principal("auditor", "au"), "i-1"))["version"] == 1


async def test_only_the_intakes_coach_or_an_admin_may_start_run_or_read_it() -> None:
    service, store = intake()
    with pytest.raises(PermissionDenied):
        await start(service, Principal("coach", "someone-else"))
    assert store.events("i-1") == []
    await start(service, Principal("admin", "ops"))
    with pytest.raises(PermissionDenied):
        await step(service, commands.SignAgreement, AGREEMENT, Principal("coach", "co-2"))
    with pytest.raises(PermissionDenied):
        await service.read(Principal("client", "cl-1"), "i-1")


async def test_a_command_on_an_unknown_intake_is_not_found() -> None:
    service, _ = intake()
    with pytest.raises(NotFound):
        await step(service, commands.CommitClient, {})
    with pytest.raises(NotFound):
        await service.read(COACH, "i-1")


async def test_erasing_a_client_records_it_on_each_of_their_intakes_and_hides_their_data() -> None:
    service, store = intake()
    await start(service)
    with pytest.raises(PermissionDenied):
        await service.erase_client(COACH, "cl-1")
    erased = await service.erase_client(Principal("admin", "ops"), "cl-1")
    assert erased == {"client_id": "cl-1", "erased": True, "stream_versions": {"i-1": 2}}
    assert store.events("i-1")[-1].event_type == "ClientErased"
    view = await service.read(COACH, "i-1")
    assert view["erased"] is True and view["client"]["name"] is None
    with pytest.raises(NotFound):
        await service.erase_client(Principal("admin", "ops"), "nobody")


async def test_a_coach_who_posts_another_intakes_ciphertext_reads_back_only_ciphertext() -> None:
    service, store = intake()
    await start(service)
    stolen = store.events("i-1")[0].data["client"]["name"]
    other = Principal("coach", "co-2")
    fields = {
        "engagement_id": "i-2",
        "client_id": "cl-2",
        "coach_id": "co-2",
        "supervisor_id": None,
        "client": {"name": "Own Client", "email": "own@example.org"},
    }
    await service.act(Sent(other, "i-2", commands.StartIntake, fields, "coach"))
    notes = {"assessment_id": "a", "instrument": "w", "scores": {"x": 1}, "notes": stolen}
    await service.act(Sent(other, "i-2", commands.AssessBaseline, notes, "coach"))
    assert store.events("i-2")[-1].data["notes"] != stolen
    view = await service.read(other, "i-2")
    assert view["assessments"][0]["notes"] == stolen and "Ada" not in str(view)
    await service.erase_client(Principal("admin", "ops"), "cl-1")
    assert (await service.read(other, "i-2"))["erased"] is False
