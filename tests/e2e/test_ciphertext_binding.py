"""Ciphertext is bound to the record that holds it (contract section 5): a coach who posts
another client's ciphertext reads back ciphertext, text shaped like ciphertext is sealed like
any text, and a value that does not decrypt reads as unreadable, never as a 500."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from rapport.cli import app as rapport_cli
from services.engagement.domain.events import FACTORS, RelationshipCheckInRecorded
from shared.model.envelope import Actor, new_id
from shared.storage.eventstore import EventMetadata
from tests.e2e.engagement_support import Journey, open_engagement
from tests.support import Stack, auth, eventually, start_intake_journey

FORGED = "enc:v1:zz:PLAINTEXT-MARKER-do-not-store-me"


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        yield intake, engagement


async def intake_started_data(stack: Stack, engagement_id: str) -> dict[str, Any]:
    """The `IntakeStarted` data as any reader of `intake.events` sees it: ciphertext."""
    row = await stack.core("intake").pool.fetchval(
        "SELECT envelope FROM events WHERE stream_id = $1 AND event_type = 'IntakeStarted'",
        engagement_id,
    )
    data: dict[str, Any] = json.loads(row)["data"]
    return data


async def read_intake(intake: httpx.AsyncClient, engagement_id: str, coach_id: str) -> Any:
    async def folded() -> dict[str, Any] | None:
        answer = await intake.get(f"/v1/intakes/{engagement_id}", headers=auth("coach", coach_id))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["assessments"] and body["goals"] else None

    return await eventually(folded)


async def test_a_coach_posting_another_clients_ciphertext_reads_back_ciphertext_not_the_name(
    stack: Stack, http: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    intake, _ = http
    victim = await start_intake_journey(
        intake,
        f"coach-a-{uuid.uuid4().hex[:6]}",
        client={"name": "Victoria Victim", "email": "victoria@private.example"},
    )
    stolen = (await intake_started_data(stack, victim["engagement_id"]))["client"]
    assert stolen["name"].startswith("enc:") and "Victoria" not in stolen["name"]

    attacker = f"coach-b-{uuid.uuid4().hex[:6]}"
    started = await intake.post(
        "/v1/intakes",
        json={"coach_id": attacker, "client": {"name": "Own Client", "email": "own@example.org"}},
        headers=auth("coach", attacker),
    )
    assert started.status_code == 201, started.text
    own = started.json()["engagement_id"]
    url, headers = f"/v1/intakes/{own}", auth("coach", attacker)
    posted = [
        await intake.post(
            f"{url}/assessments",
            json={"instrument": "x", "scores": {"a": 1}, "notes": stolen["name"]},
            headers=headers,
        ),
        await intake.post(
            f"{url}/goals",
            json={"title": stolen["email"], "measure": FORGED, "baseline": 1, "target": 2},
            headers=headers,
        ),
    ]
    assert [answer.status_code for answer in posted] == [201, 201], [a.text for a in posted]

    view = await read_intake(intake, own, attacker)
    assert view["assessments"][0]["notes"] == stolen["name"]
    assert view["goals"][0]["title"] == stolen["email"]
    assert view["goals"][0]["measure"] == FORGED
    assert "Victoria" not in json.dumps(view) and "victoria@" not in json.dumps(view)
    assert view["erased"] is False and view["unreadable"] == 0

    erased = await intake.post(
        f"/v1/clients/{victim['client_id']}/erasure", headers=auth("admin", "ops")
    )
    assert erased.status_code == 201, erased.text
    after = await read_intake(intake, own, attacker)
    assert after["erased"] is False and after["goals"][0]["title"] == stolen["email"]


async def test_text_shaped_like_ciphertext_is_stored_encrypted_everywhere(
    stack: Stack, http: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    intake, _ = http
    coach = f"coach-{uuid.uuid4().hex[:6]}"
    started = await intake.post(
        "/v1/intakes",
        json={
            "coach_id": coach,
            "client": {"name": "N", "email": "n@example.org", "timezone": "Pacific/Chatham"},
        },
        headers=auth("coach", coach),
    )
    engagement_id = started.json()["engagement_id"]
    goal = await intake.post(
        f"/v1/intakes/{engagement_id}/goals",
        json={"title": FORGED, "measure": FORGED, "baseline": 0, "target": 1},
        headers=auth("coach", coach),
    )
    assert goal.status_code == 201, goal.text
    pool = stack.core("intake").pool

    async def stored_everywhere() -> list[str] | None:
        events = await pool.fetch(
            "SELECT envelope::text AS t FROM events WHERE stream_id = $1", engagement_id
        )
        documents = await pool.fetch(
            "SELECT doc::text AS t FROM documents WHERE doc::text LIKE $1", f"%{engagement_id}%"
        )
        texts = [row["t"] for row in [*events, *documents]]
        return (
            texts
            if len(events) == 2 and any("goals" in t and "enc:v2" in t for t in texts)
            else None
        )

    texts = await eventually(stored_everywhere)
    assert not any("PLAINTEXT-MARKER" in text for text in texts)
    assert not any("Pacific/Chatham" in text for text in texts)  # a timezone is personal data


async def test_a_forged_checkin_comment_is_kept_as_text_and_the_view_answers_everyone(
    stack: Stack, http: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    intake, engagement = http
    journey = await open_engagement(stack, intake, engagement, supervisor=True)
    await journey.send("plan")
    forged = f"enc:v1:{journey.client_id}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    body = {"ratings": dict.fromkeys(FACTORS, 4), "comment": forged}
    await journey.send("relationship-checkins", body, role="client")
    for role in ("coach", "client", "supervisor", "admin"):
        view = await journey.view("/relationship", role=role)
        assert view["comments"]["client"] == forged
        assert view["unreadable"] == 0


async def append_unsealed_checkin(journey: Journey, comment: str) -> None:
    """A check-in whose comment is ciphertext that no key opens, appended under the kernel's
    sealing, as a database holding forged or corrupted ciphertext would have it."""
    store = journey.stack.core("engagement").store
    event = RelationshipCheckInRecorded(
        checkin_id=new_id(),
        rater="client",
        ratings=dict.fromkeys(FACTORS, 3),
        comment=comment,
        coach_id=journey.coach_id,
        recorded_at=datetime.now(UTC),
    )
    metadata = EventMetadata(
        actor=Actor(role="client", id=journey.client_id), correlation_id=new_id()
    )
    async with store.transaction() as conn:
        appended = await store.append(conn, journey.engagement_id, None, [event], metadata)
    journey.version = appended[-1].stream_version


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, rapport_cli, list(args))


async def test_a_value_that_does_not_decrypt_reads_unreadable_in_views_metrics_and_the_report(
    stack: Stack,
    http: tuple[httpx.AsyncClient, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    intake, engagement = http
    journey = await open_engagement(stack, intake, engagement, supervisor=True)
    await journey.send("plan")
    await append_unsealed_checkin(journey, f"enc:v2:comment:{'A' * 60}")
    for role in ("coach", "client", "supervisor", "admin"):
        view = await journey.view("/relationship", role=role)
        assert view["comments"]["client"] is None and view["unreadable"] == 1
    metrics = (await engagement.get("/metrics")).text
    assert "rapport_personal_values_unreadable_total" in metrics

    assert stack.settings.database_url and stack.settings.master_key
    monkeypatch.setenv("RAPPORT_DATABASE_URL", stack.settings.database_url)
    monkeypatch.setenv("RAPPORT_MASTER_KEY", stack.settings.master_key)
    out = tmp_path / "report.html"
    result = await cli("audit", "report", journey.engagement_id, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "unreadable" in out.read_text()
