"""Every event real journeys store matches the published schema of its type and version
(contract section 11): two engagements through the three services reach every event type of
every service, and then every row of the three logs is validated."""

from __future__ import annotations

import uuid

from rapport.registry import SERVICES, events_of
from services.engagement.domain.events import FACTORS
from shared.model.envelope import Envelope
from shared.model.event_schemas import EventSchemas
from tests.e2e.engagement_support import DUE, Journey
from tests.e2e.test_confidentiality import (
    Parties,
    commit_intake,
    drive_to_graduation,
    opened_journey,
    personal_values,
    register_webhooks,
)
from tests.integration.webhook_support import receiver
from tests.support import Stack, auth, eventually


def ratings(**low: int) -> dict[str, int]:
    return {**dict.fromkeys(FACTORS, 4), **low}


async def stored_events(stack: Stack, service: str) -> list[Envelope]:
    """Every row of the service's log, as stored."""
    rows = await stack.core(service).pool.fetch("SELECT envelope::text AS e FROM events")
    return [Envelope.model_validate_json(row["e"]) for row in rows]


async def deceive_regress_and_end(journey: Journey, values: dict[str, str]) -> None:
    """A working plan with a relationship concern raised and resolved, three refuted claims
    (the deception pattern), a regression from transformation, and a termination."""
    await journey.send("plan")
    for low in (2, 2, 5):  # the second low rating raises the concern, the 5 resolves it
        body = {"ratings": ratings(empathy=low), "comment": values["client check-in comment"]}
        await journey.send("relationship-checkins", body, role="client")
    for title in ("one", "two", "three"):
        homework = (await journey.send("homework", {"title": title, "due_at": DUE}))["homework_id"]
        await journey.send(f"homework/{homework}/claim", role="client")
        await journey.send(f"homework/{homework}/verification", {"outcome": "refuted"})
    await journey.send("transformation", {"summary": values["transformation summary"]})
    await journey.send("self-checks", {"on_track": False}, role="client")  # a regression
    await journey.send("termination", {"reason": "mutual", "notes": values["termination notes"]})


def has(events: list[Envelope], stream_id: str, event_type: str) -> bool:
    return any(e.stream_id == stream_id and e.event_type == event_type for e in events)


async def test_every_stored_event_of_full_journeys_matches_its_published_schema(
    stack: Stack,
) -> None:
    values = personal_values(uuid.uuid4().hex[:10])
    async with (
        receiver() as coach_hook,
        receiver(answer=lambda _: 500) as client_hook,  # the client's welcome fails
        stack.client("engagement") as http,
    ):

        async def webhooks(parties: Parties) -> None:
            await register_webhooks(
                stack, parties, {"coach": coach_hook.url, "client": client_hook.url}, "secret"
            )

        graduated = await opened_journey(
            stack, http, await commit_intake(stack, values, before_commit=webhooks)
        )
        await drive_to_graduation(graduated, values)
        ended = await opened_journey(stack, http, await commit_intake(stack, values))
        await deceive_regress_and_end(ended, values)
        async with stack.client("intake") as intake:
            erased = await intake.post(
                f"/v1/clients/{ended.client_id}/erasure", headers=auth("admin", "ops")
            )
        assert erased.status_code == 201, erased.text

        async def settled() -> dict[str, list[Envelope]] | None:
            logs = {service: await stored_events(stack, service) for service in SERVICES}
            done = (
                has(logs["engagement"], ended.engagement_id, "ClientDataErased")
                and has(logs["notifications"], graduated.engagement_id, "NotificationDelivered")
                and has(logs["notifications"], graduated.engagement_id, "NotificationFailed")
            )
            return logs if done else None

        logs = await eventually(settled, timeout=60.0)

    journeys = {graduated.engagement_id, ended.engagement_id}
    validated: list[Envelope] = []
    for service, events in logs.items():
        schemas = EventSchemas.of(events_of(service))
        for envelope in events:
            assert envelope.producer == service
            assert schemas.errors(envelope) == [], envelope.to_json().decode()
            validated.append(envelope)
    ours = [envelope for envelope in validated if envelope.stream_id in journeys]
    current = {  # the last model of each type is its current version
        model.event_type: (model.event_type, model.schema_version)
        for service in SERVICES
        for model in events_of(service).models()
    }
    assert {(e.event_type, e.schema_version) for e in ours} == set(current.values())
    assert len(ours) >= 80 and len(validated) >= len(ours)  # about 90 of ours once settled
