"""No personal value ever appears in plaintext in Kafka, in an event row, in a projection
document or in a webhook; erasure nulls it everywhere and changes no number."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner, Result

from rapport.cli import app as rapport_cli
from services.engagement.domain.events import FACTORS
from shared.model.envelope import GENESIS_HASH, Envelope
from tests.e2e.engagement_support import DUE, HELD, Journey
from tests.integration.webhook_support import Receiver, receiver
from tests.support import Stack, auth, eventually, start_intake_journey

RATINGS = dict.fromkeys(FACTORS, 2)
PAYLOAD_FIELDS = {"notification_id", "kind", "recipient", "engagement_id", "due_at", "created_at"}


def secrets_of(tag: str) -> dict[str, Any]:
    return {
        "name": f"Zelda Quixote {tag}",
        "email": f"zelda.{tag}@private.example",
        "phone": f"+44 7700 {tag[:6]}",
    }


def personal_values(tag: str) -> dict[str, str]:
    """A distinctive value for every personal field a journey sends (contract section 5)."""
    labels = (
        "assessment notes",
        "goal title",
        "goal measure",
        "contact hours",
        "homework title",
        "claim note",
        "evidence",
        "session notes",
        "violation description",
        "resolution steps",
        "review notes",
        "transformation summary",
        "self-check notes",
        "follow-up notes",
        "testimonial text",
        "termination notes",
        "client check-in comment",
        "coach check-in comment",
    )
    values = {label: f"Quokka {label} {tag}" for label in labels}
    return {**values, **secrets_of(tag)}


@dataclass
class Parties:
    engagement_id: str
    coach_id: str
    client_id: str
    supervisor_id: str


async def commit_intake(
    stack: Stack, values: dict[str, str], *, before_commit: Any = None
) -> Parties:
    """An intake whose every personal field carries one of `values`, run to ClientCommitted."""
    ids = uuid.uuid4().hex[:8]
    coach_id, supervisor_id = f"coach-{ids}", f"sup-{ids}"
    headers = auth("coach", coach_id)
    async with stack.client("intake") as intake:
        started = await intake.post(
            "/v1/intakes",
            json={
                "coach_id": coach_id,
                "supervisor_id": supervisor_id,
                "client": {
                    "name": values["name"],
                    "email": values["email"],
                    "phone": values["phone"],
                },
            },
            headers=headers,
        )
        assert started.status_code == 201, started.text
        parties = Parties(
            started.json()["engagement_id"], coach_id, started.json()["client_id"], supervisor_id
        )
        if before_commit is not None:
            await before_commit(parties)
        url = f"/v1/intakes/{parties.engagement_id}"
        steps = [
            (
                "assessments",
                {
                    "instrument": "wellbeing",
                    "scores": {"energy": 4},
                    "notes": values["assessment notes"],
                },
            ),
            (
                "goals",
                {
                    "title": values["goal title"],
                    "measure": values["goal measure"],
                    "baseline": 1,
                    "target": 5,
                },
            ),
            (
                "agreement",
                {
                    "role_explained": True,
                    "confidentiality_limits_acknowledged": True,
                    "signed_by_client": True,
                    "signed_by_coach": True,
                    "contact_channels": ["video"],
                    "contact_hours": values["contact hours"],
                    "session_cadence_days": 7,
                },
            ),
        ]
        for path, body in steps:
            response = await intake.post(f"{url}/{path}", json=body, headers=headers)
            assert response.status_code == 201, response.text
        committed = await intake.post(f"{url}/commitment", headers=headers)
        assert committed.status_code == 201, committed.text
    return parties


async def register_webhooks(
    stack: Stack, parties: Parties, urls: dict[Literal["coach", "client"], str], secret: str
) -> None:
    """A webhook for each party named in `urls`, registered by that party itself."""
    subjects = {"coach": parties.coach_id, "client": parties.client_id}
    async with stack.client("notifications") as notifications:
        for role, url in urls.items():
            sub = subjects[role]
            registered = await notifications.post(
                "/v1/webhooks",
                json={"recipient": f"{role}:{sub}", "url": url, "secret": secret},
                headers=auth(role, sub),
            )
            assert registered.status_code == 201, registered.text


async def opened_journey(stack: Stack, http: httpx.AsyncClient, parties: Parties) -> Journey:
    journey = Journey(
        stack=stack,
        http=http,
        engagement_id=parties.engagement_id,
        coach_id=parties.coach_id,
        client_id=parties.client_id,
        supervisor_id=parties.supervisor_id,
    )
    await journey.stage()
    return journey


async def drive_to_graduation(journey: Journey, values: dict[str, str]) -> None:
    """Every command of the engagement that carries free text, through all four stages."""
    homework = await journey.send("homework", {"title": values["homework title"], "due_at": DUE})
    hw = homework["homework_id"]
    for role in ("client", "coach"):
        await journey.send(
            "relationship-checkins",
            {"ratings": RATINGS, "comment": values[f"{role} check-in comment"]},
            role=role,  # type: ignore[arg-type]
        )
    await journey.send(f"homework/{hw}/claim", {"note": values["claim note"]}, role="client")
    await journey.send(
        f"homework/{hw}/verification", {"outcome": "confirmed", "evidence": values["evidence"]}
    )
    await journey.send(
        "sessions", {"held_at": HELD, "duration_minutes": 45, "notes": values["session notes"]}
    )
    violation = await journey.send(
        "boundary-violations",
        {
            "violated_by": "coach",
            "kind": "confidentiality_breach",
            "description": values["violation description"],
        },
        role="client",
    )
    await journey.send(
        f"boundary-violations/{violation['violation_id']}/resolution",
        {"steps": values["resolution steps"]},
    )
    await journey.send("boundary-reviews", {"notes": values["review notes"]})
    await journey.send(
        "self-checks", {"on_track": True, "notes": values["self-check notes"]}, role="client"
    )
    await journey.send("transformation", {"summary": values["transformation summary"]})
    await journey.send("graduation", {"session_cadence_days": 30})
    await journey.send("graduate")
    await journey.send("follow-ups", {"scores": {"energy": 5}, "notes": values["follow-up notes"]})
    await journey.send(
        "testimonial",
        {"text": values["testimonial text"], "consent_to_publish": True},
        role="client",
    )


async def every_kafka_record(stack: Stack) -> list[bytes]:
    """Keys, values and header values of every record of every topic, DLQs included."""
    bootstrap = stack.settings.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
    finally:
        await admin.close()
    assert {"intake.events.dlq", "engagement.events.dlq", "notifications.events.dlq"} <= set(topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    found += [record.key or b"", record.value or b""]
                    found += [name.encode() + b"=" + value for name, value in record.headers]
    finally:
        await consumer.stop()
    return found


async def every_stored_row(stack: Stack) -> list[str]:
    """Every event row and every projection document of every schema in the database."""
    pool = stack.core("intake").pool
    found: list[str] = []
    tables = await pool.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_name IN ('events', 'documents')"
    )
    assert {"intake", "engagement", "notifications"} <= {row["table_schema"] for row in tables}
    for row in tables:
        column = "envelope" if row["table_name"] == "events" else "doc"
        records = await pool.fetch(
            f'SELECT {column}::text AS t FROM "{row["table_schema"]}"."{row["table_name"]}"'
        )
        found.extend(record["t"] for record in records)
    return found


async def delivered_to(hook: Receiver, count: int) -> None:
    async def enough() -> bool:
        return len(hook.received) >= count

    await eventually(enough, timeout=30.0)


async def test_full_journeys_leave_no_personal_value_in_plaintext_anywhere(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:10]
    values = personal_values(tag)
    async with receiver() as hook, stack.client("engagement") as http:

        async def webhooks(parties: Parties) -> None:
            await register_webhooks(stack, parties, {"coach": hook.url, "client": hook.url}, tag)

        graduated = await opened_journey(
            stack, http, await commit_intake(stack, values, before_commit=webhooks)
        )
        await drive_to_graduation(graduated, values)
        ended = await opened_journey(stack, http, await commit_intake(stack, values))
        await ended.send("termination", {"reason": "mutual", "notes": values["termination notes"]})
        view = await graduated.stage()
        assert view["stage"] == "graduated" and view["erased"] is False
        await graduated.published_events()
        await ended.published_events()
        # welcome (coach, client), claim_to_verify, boundary_violation, supervision_recommended
        await delivered_to(hook, 5)
    async with stack.client("intake") as intake:
        read = await intake.get(
            f"/v1/intakes/{graduated.engagement_id}", headers=auth("coach", graduated.coach_id)
        )
    assert read.json()["client"]["name"] == values["name"]  # authorised reads decrypt
    assert read.json()["goals"][0]["measure"] == values["goal measure"]

    kafka = await every_kafka_record(stack)
    stored = [row.encode() for row in await every_stored_row(stack)]
    webhook_traffic = [request.body + repr(request.headers).encode() for request in hook.received]
    for request in hook.received:
        assert set(request.json) == PAYLOAD_FIELDS
    assert graduated.engagement_id.encode() in b"".join(kafka)  # the scan sees this journey
    assert any(graduated.engagement_id.encode() in row for row in stored)
    for label, value in values.items():
        needle = value.encode()
        assert not any(needle in item for item in kafka), f"{label} in Kafka"
        assert not any(needle in item for item in stored), f"{label} in a stored row"
        assert not any(needle in item for item in webhook_traffic), f"{label} in a webhook"


async def cli(*args: str) -> Result:
    """Run the command line in a thread: it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, rapport_cli, list(args))


def numbers(view: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in view.items() if name not in ("version", "erased")}


async def test_erasure_reaches_intake_and_engagement_keeps_every_chain_and_changes_no_number(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:10]
    values = personal_values(tag)
    async with stack.client("engagement") as http:
        journey = await opened_journey(stack, http, await commit_intake(stack, values))
        homework = await journey.send(
            "homework", {"title": values["homework title"], "due_at": DUE}
        )
        await journey.send(
            f"homework/{homework['homework_id']}/claim", {"note": "n"}, role="client"
        )
        await journey.send(
            f"homework/{homework['homework_id']}/verification",
            {"outcome": "refuted", "evidence": values["evidence"]},
        )
        await journey.send(
            "boundary-violations",
            {
                "violated_by": "client",
                "kind": "other",
                "description": values["violation description"],
            },
        )
        await journey.send("sessions", {"held_at": HELD, "duration_minutes": 30, "notes": "x"})
        for _ in range(2):  # the second opens concerns: two consecutive low ratings
            await journey.send(
                "relationship-checkins",
                {"ratings": RATINGS, "comment": values["client check-in comment"]},
                role="client",
            )
        stage_before, trust_before = await journey.stage(), await journey.trust()
        bond_before = await journey.view("/relationship")
        assert stage_before["erased"] is False and trust_before["score"] < 100
        assert bond_before["comments"]["client"] == values["client check-in comment"]
        assert bond_before["concerns"] == list(FACTORS)
        version_before = journey.version

        async with stack.client("intake") as intake:
            erased = await intake.post(
                f"/v1/clients/{journey.client_id}/erasure", headers=auth("admin", "ops")
            )
            assert erased.status_code == 201, erased.text
            intake_view = await intake.get(
                f"/v1/intakes/{journey.engagement_id}", headers=auth("coach", journey.coach_id)
            )

        async def recorded() -> list[Envelope] | None:
            events = await journey.stored_events()
            return events if events[-1].event_type == "ClientDataErased" else None

        events = await eventually(recorded)
        journey.version = events[-1].stream_version
        assert journey.version == version_before + 1
        stage_after, trust_after = await journey.stage(), await journey.trust()
        bond_after = await journey.view("/relationship", role="client")
        coach_list = await http.get(
            f"/v1/coaches/{journey.coach_id}/engagements", headers=auth("coach", journey.coach_id)
        )

    client = intake_view.json()
    assert client["erased"] is True
    assert client["client"]["name"] is None and client["client"]["email"] is None
    assert client["goals"][0]["title"] is None and client["goals"][0]["measure"] is None
    assert client["goals"][0]["target"] == 5 and client["status"] == "committed"

    assert stage_after["erased"] is True and trust_after["erased"] is True
    assert coach_list.json()["items"][0]["erased"] is True
    assert numbers(stage_after) == numbers(stage_before)
    assert numbers(trust_after) == numbers(trust_before)
    assert bond_after["erased"] is True and bond_after["comments"] == {
        "client": None,
        "coach": None,
    }
    assert {**numbers(bond_after), "comments": None} == {**numbers(bond_before), "comments": None}
    assert events[-1].data == {
        "client_id": journey.client_id,
        "erased_at": events[-1].data["erased_at"],
    }

    previous = GENESIS_HASH
    for envelope in events:
        assert envelope.is_intact() and envelope.prev_hash == previous
        previous = envelope.hash
    monkeypatch.setenv("RAPPORT_DATABASE_URL", stack.settings.database_url)
    verified = await cli("audit", "verify", "--service", "intake", "--service", "engagement")
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output


async def test_erasure_is_for_admins_only_and_for_known_clients(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:10]
    coach_id = f"coach-{tag}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id, client=secrets_of(tag))
        client_id = journey["client_id"]
        for role, sub in (("coach", coach_id), ("client", client_id), ("auditor", "a")):
            denied = await intake.post(
                f"/v1/clients/{client_id}/erasure",
                headers=auth(role, sub),  # type: ignore[arg-type]
            )
            assert denied.status_code == 403
        unknown = await intake.post(
            f"/v1/clients/{uuid.uuid4()}/erasure", headers=auth("admin", "a")
        )
        assert unknown.status_code == 404
        view = await intake.get(
            f"/v1/intakes/{journey['engagement_id']}", headers=auth("coach", coach_id)
        )
    assert view.json()["erased"] is False
    assert view.json()["client"]["name"] == secrets_of(tag)["name"]
