"""The relationship itself (contract section 7) over real HTTP and Kafka: six-factor check-ins,
the relationship view and its as-of reads, concerns that open, escalate and resolve, the
notifications they cause, and the coach's roll-up across engagements."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.engagement.domain.events import FACTORS
from shared.model.envelope import format_time, parse_time
from tests.e2e.engagement_support import Journey, open_engagement
from tests.support import Stack, auth, eventually

ADMIN = auth("admin", "ops")


def ratings(rating: int, **others: int) -> dict[str, int]:
    return {**dict.fromkeys(FACTORS, rating), **others}


def checkin(rating: int, comment: str | None = None, **others: int) -> dict[str, Any]:
    body: dict[str, Any] = {"ratings": ratings(rating, **others)}
    if comment is not None:
        body["comment"] = comment
    return body


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client("engagement") as client:
        yield client


async def working(
    stack: Stack,
    http: httpx.AsyncClient,
    *,
    supervisor: bool = False,
    coach_id: str | None = None,
) -> Journey:
    """An engagement opened through the intake (over Kafka) with its plan started."""
    async with stack.client("intake") as intake:
        journey = await open_engagement(
            stack, intake, http, supervisor=supervisor, coach_id=coach_id
        )
    await journey.send("plan")
    return journey


async def notifications(stack: Stack, recipient: str, engagement_id: str) -> list[str]:
    async with stack.client("notifications") as http:
        response = await http.get(
            "/v1/notifications", params={"recipient": recipient}, headers=ADMIN
        )
    assert response.status_code == 200, response.text
    return sorted(
        i["kind"] for i in response.json()["items"] if i["engagement_id"] == engagement_id
    )


async def kinds_become(
    stack: Stack, recipient: str, engagement_id: str, expected: list[str]
) -> None:
    async def probe() -> bool:
        return await notifications(stack, recipient, engagement_id) == sorted(expected)

    await eventually(probe, timeout=30.0)


async def test_every_opened_engagement_has_a_relationship_view_with_nothing_in_it_yet(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    async with stack.client("intake") as intake:
        journey = await open_engagement(stack, intake, http, supervisor=True)
        view = await journey.view("/relationship")
    assert view == {
        "engagement_id": journey.engagement_id,
        "client_id": journey.client_id,
        "coach_id": journey.coach_id,
        "supervisor_id": journey.supervisor_id,
        "checkins": {"client": 0, "coach": 0},
        "latest": {"client": None, "coach": None},
        "average": {},
        "gaps": {},
        "concerns": [],
        "health": None,
        "comments": {"client": None, "coach": None},
        "erased": False,
        "unreadable": 0,
        "version": 1,
    }


async def test_check_ins_build_counts_latest_ratings_averages_of_the_last_three_gaps_and_health(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    journey = await working(stack, http)
    answers = []
    for body in (
        checkin(5, "a good start"),
        checkin(4, empathy=2),
        checkin(3, empathy=3, active_listening=4),
        checkin(4, "better", empathy=4, boundaries=5),
    ):
        answers.append(await journey.send("relationship-checkins", body, role="client"))
    coach = await journey.send(
        "relationship-checkins", checkin(5, "I listen well", active_listening=5), role="coach"
    )
    assert set(coach) == {"checkin_id", "stream_version"}
    assert len({answer["checkin_id"] for answer in [*answers, coach]}) == 5
    first, repeated = [
        await journey.post(
            "relationship-checkins",
            checkin(5, "I listen well", active_listening=5),
            role="coach",
            headers={"Idempotency-Key": "coach-checkin-1"},
        )
        for _ in range(2)
    ]
    assert first.status_code == repeated.status_code == 201
    assert repeated.json() == first.json()  # the first answer again, nothing written
    journey.version = first.json()["stream_version"]
    unknown = f"/v1/engagements/{uuid.uuid4()}"
    absent = await http.post(
        f"{unknown}/relationship-checkins", json=checkin(3), headers=auth("admin", "ops")
    )
    unread = await http.get(f"{unknown}/relationship", headers=auth("admin", "ops"))
    assert absent.status_code == unread.status_code == 404
    view = await journey.view("/relationship")
    as_client = await journey.view("/relationship", role="client")

    assert view == as_client
    assert view["checkins"] == {"client": 4, "coach": 2}
    assert view["latest"] == {
        "client": ratings(4, empathy=4, boundaries=5),
        "coach": ratings(5),
    }
    # the client's last three: 4/2, 3/3/4, 4/4/5 per factor
    assert view["average"] == {
        "client": {
            "empathy": 3.0,  # (2 + 3 + 4) / 3
            "active_listening": 4.0,  # (4 + 4 + 4) / 3
            "non_judgment": 3.67,  # (4 + 3 + 4) / 3 = 3.666…
            "confidentiality": 3.67,
            "collaboration": 3.67,
            "boundaries": 4.0,  # (4 + 3 + 5) / 3
        },
        "coach": dict.fromkeys(FACTORS, 5.0),
    }
    assert view["gaps"] == {**dict.fromkeys(FACTORS, 1), "boundaries": 0}
    assert view["health"] == 79  # mean 25/6: floor(100 * (25/6 - 1) / 4 + 0.5) = 79
    assert view["concerns"] == []
    assert view["comments"] == {"client": "better", "coach": "I listen well"}
    assert view["version"] == journey.version


async def test_a_relationship_read_as_of_a_past_moment_is_the_view_that_was_live_then(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    journey = await working(stack, http)
    await journey.send("relationship-checkins", checkin(2), role="client")
    then = await journey.view("/relationship")
    await journey.send("relationship-checkins", checkin(1), role="client")
    now = await journey.view("/relationship")
    events = await journey.stored_events()
    plan = next(e for e in events if e.event_type == "PlanStarted")
    first, second = [e for e in events if e.event_type == "RelationshipCheckInRecorded"]
    moments = [parse_time(e.occurred_at) for e in (plan, first, second)]
    assert moments == sorted(moments) and len(set(moments)) == 3
    past = await journey.as_of(format_time(midpoint(*moments[1:])), "/relationship")
    before = await journey.as_of(format_time(midpoint(*moments[:2])), "/relationship")
    assert past == then and past != now
    assert now["concerns"] == list(FACTORS)
    assert before["checkins"] == {"client": 0, "coach": 0} and before["health"] is None


def midpoint(start: datetime, end: datetime) -> datetime:
    return start + (end - start) / 2


async def test_check_ins_outside_the_active_stages_are_409_and_anything_but_six_integers_is_422(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    async with stack.client("intake") as intake:
        journey = await open_engagement(stack, intake, http)
        await journey.refused("relationship-checkins", checkin(3), role="client", status=409)
        await journey.send("plan")
        missing = ratings(3)
        del missing["boundaries"]
        invalid: list[tuple[Any, str]] = [
            ({"ratings": missing}, "ratings.boundaries"),
            ({"ratings": {**ratings(3), "humour": 3}}, "ratings.humour"),
            ({"ratings": ratings(3, empathy=0)}, "ratings.empathy"),
            ({"ratings": ratings(3, empathy=6)}, "ratings.empathy"),
            ({"ratings": ratings(3, empathy=3.0)}, "ratings.empathy"),  # type: ignore[arg-type]
            ({"ratings": ratings(3, empathy="3")}, "ratings.empathy"),  # type: ignore[arg-type]
            ({"ratings": ratings(3, empathy=True)}, "ratings.empathy"),
            ({"ratings": ratings(3, empathy=None)}, "ratings.empathy"),  # type: ignore[arg-type]
            ({"ratings": list(FACTORS)}, "ratings"),
            ({"ratings": {}}, "ratings.empathy"),
            ({}, "ratings"),
            ({**checkin(3), "comment": "x" * 10_001}, "comment"),
            ({**checkin(3), "rater": "supervisor"}, "rater"),
            ({**checkin(3), "rater": "coach"}, "rater"),  # a client rates as the client
        ]
        for body, field in invalid:
            problem = await journey.refused(
                "relationship-checkins", body, role="client", status=422
            )
            assert field in {error["field"] for error in problem["errors"]}, (body, problem)
        for literal, status in (
            ("NaN", 422),
            ("Infinity", 422),
            ("1e999", 422),
            ("3.5", 422),
            ("3e0", 422),
            ("-3", 422),
            ('"three"', 422),
            ("9" * 5000, 422),
        ):
            raw = json.dumps(checkin(3)).replace('"empathy": 3', f'"empathy": {literal}')
            response = await http.post(
                f"/v1/engagements/{journey.engagement_id}/relationship-checkins",
                content=raw.encode(),
                headers={**journey.headers("client"), "content-type": "application/json"},
            )
            assert response.status_code == status, (literal, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        assert await journey.stored_version() == journey.version
        await journey.send("relationship-checkins", checkin(3), role="client")
        await journey.send("termination", {"reason": "mutual"})
        await journey.refused("relationship-checkins", checkin(3), role="coach", status=409)
        view = await journey.view("/relationship")
    assert view["checkins"] == {"client": 1, "coach": 0}


async def test_parties_check_in_as_themselves_an_admin_names_the_rater_and_others_are_refused(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    journey = await working(stack, http, supervisor=True)
    await journey.refused("relationship-checkins", checkin(3), role="supervisor", status=403)
    await journey.refused("relationship-checkins", checkin(3), role="auditor", status=403)
    stranger = await journey.post(
        "relationship-checkins", checkin(3), role="client", sub="someone-else"
    )
    assert stranger.status_code == 403
    problem = await journey.refused("relationship-checkins", checkin(3), role="admin", status=422)
    assert problem["errors"] == [
        {"field": "rater", "message": "an admin's check-in names its rater: client or coach"}
    ]
    await journey.send("relationship-checkins", {**checkin(2), "rater": "client"}, role="admin")
    await journey.send("relationship-checkins", {**checkin(4), "rater": "coach"}, role="coach")
    view = await journey.view("/relationship", role="supervisor")
    events = await journey.stored_events()
    readers = {}
    for role, sub in (("auditor", "a-1"), ("coach", "another-coach"), ("supervisor", "s-x")):
        response = await journey.http.get(
            f"/v1/engagements/{journey.engagement_id}/relationship",
            headers=auth(role, sub),  # type: ignore[arg-type]
        )
        readers[role] = response.status_code
    assert view["checkins"] == {"client": 1, "coach": 1}
    recorded = [e for e in events if e.event_type == "RelationshipCheckInRecorded"]
    assert [(e.data["rater"], e.actor.role) for e in recorded] == [
        ("client", "admin"),
        ("coach", "coach"),
    ]
    assert readers == {"auditor": 200, "coach": 403, "supervisor": 403}


async def test_a_concern_opens_escalates_to_supervision_once_and_resolves_with_notifications(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    journey = await working(stack, http, supervisor=True)
    listening = "active_listening"
    await journey.send("relationship-checkins", checkin(4, **{listening: 2}), role="client")
    await journey.send("relationship-checkins", checkin(1), role="coach")  # never a concern
    raised = await journey.send(
        "relationship-checkins", checkin(4, "I feel unheard", **{listening: 1}), role="client"
    )
    view = await journey.view("/relationship")
    assert view["concerns"] == [listening]
    assert view["gaps"][listening] == 0 and view["gaps"]["empathy"] == -3
    escalated = await journey.send(
        "relationship-checkins", checkin(4, **{listening: 2}), role="client"
    )
    await journey.send("relationship-checkins", checkin(4, **{listening: 1}), role="client")
    stage = await journey.stage()
    assert stage["supervision_recommendations"] == 1
    resolved = await journey.send(
        "relationship-checkins", checkin(4, **{listening: 4}), role="client"
    )
    view = await journey.view("/relationship")
    events = await journey.published_events()

    assert view["concerns"] == [] and view["health"] == 75
    stored = await journey.stored_events()
    assert [e.event_id for e in events] == [e.event_id for e in stored]  # all on Kafka
    relationship = [
        (e.stream_version, e.event_type, e.data.get("factor"), e.data.get("reason"))
        for e in events
        if e.event_type
        in ("RelationshipConcernRaised", "RelationshipConcernResolved", "SupervisionRecommended")
    ]
    assert relationship == [
        (raised["stream_version"], "RelationshipConcernRaised", listening, None),
        (
            escalated["stream_version"],
            "SupervisionRecommended",
            listening,
            f"relationship:{listening}",
        ),
        (resolved["stream_version"], "RelationshipConcernResolved", listening, None),
    ]
    recommended = next(e for e in events if e.event_type == "SupervisionRecommended")
    assert recommended.schema_version == 2
    assert recommended.data["party"] == "coach"
    assert recommended.data["supervisor_id"] == journey.supervisor_id
    comments = [e.data["comment"] for e in events if e.event_type == "RelationshipCheckInRecorded"]
    assert [c for c in comments if c is not None] and all(
        c.startswith("enc:v2:") for c in comments if c is not None
    )
    await kinds_become(
        stack,
        f"coach:{journey.coach_id}",
        journey.engagement_id,
        ["relationship_concern", "supervision_recommended", "welcome"],
    )
    await kinds_become(
        stack,
        f"supervisor:{journey.supervisor_id}",
        journey.engagement_id,
        ["supervision_recommended"],
    )
    assert await notifications(stack, f"client:{journey.client_id}", journey.engagement_id) == [
        "welcome"
    ]


async def rollup(http: httpx.AsyncClient, coach_id: str, role: Any, sub: str) -> httpx.Response:
    return await http.get(f"/v1/coaches/{coach_id}/relationship", headers=auth(role, sub))


async def test_the_coach_roll_up_averages_each_engagements_latest_client_ratings(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    first = await working(stack, http, supervisor=True, coach_id=coach_id)
    second = await working(stack, http, coach_id=coach_id)
    quiet = await working(stack, http, coach_id=coach_id)  # no client check-in: not counted
    await first.send("relationship-checkins", checkin(1), role="client")
    await first.send("relationship-checkins", checkin(2, empathy=5), role="client")
    await second.send("relationship-checkins", checkin(3, boundaries=4), role="client")
    await second.send("relationship-checkins", checkin(1), role="coach")  # not the clients'
    await quiet.send("relationship-checkins", checkin(5), role="coach")
    expected = {
        "coach_id": coach_id,
        "engagements": 2,
        "average": {**dict.fromkeys(FACTORS, 2.5), "empathy": 4.0, "boundaries": 3.0},
        "open_concerns": 5,  # every factor of the first engagement but empathy
    }

    async def rolled_up() -> dict[str, Any] | None:
        response = await rollup(first.http, coach_id, "coach", coach_id)
        body: dict[str, Any] = response.json()
        return body if {k: body.get(k) for k in expected} == expected else None

    body = await eventually(rolled_up)
    assert body["version"] == 11  # 3 openings, 3 client check-ins, 5 concerns raised
    statuses = {
        "supervisor_of_one": await rollup(
            first.http, coach_id, "supervisor", first.supervisor_id or ""
        ),
        "another_supervisor": await rollup(first.http, coach_id, "supervisor", "sup-unrelated"),
        "another_coach": await rollup(first.http, coach_id, "coach", "coach-unrelated"),
        "client": await rollup(first.http, coach_id, "client", first.client_id),
        "auditor": await rollup(first.http, coach_id, "auditor", "a-1"),
        "admin": await rollup(first.http, coach_id, "admin", "ops"),
    }
    unknown = await rollup(first.http, f"coach-{uuid.uuid4().hex}", "admin", "ops")
    assert {name: r.status_code for name, r in statuses.items()} == {
        "supervisor_of_one": 200,
        "another_supervisor": 403,
        "another_coach": 403,
        "client": 403,
        "auditor": 200,
        "admin": 200,
    }
    assert statuses["auditor"].json() == body
    assert unknown.status_code == 200
    assert {k: v for k, v in unknown.json().items() if k != "coach_id"} == {
        "engagements": 0,
        "average": {},
        "open_concerns": 0,
        "version": 0,
    }
