"""The engagement's HTTP rules: wrong stages, invalid bodies, access, idempotency, racing
commands, the coach's list, reads as of a time, and rebuilding the projections."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from services.engagement.domain.events import FACTORS
from services.engagement.projections import PROJECTIONS
from shared.reads.audit import live_digests, replay
from tests.e2e.engagement_support import DUE, HELD, Journey, open_engagement
from tests.support import Stack, auth, eventually


async def test_every_wrong_stage_command_is_a_409_that_writes_nothing(stack: Stack) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        in_commitment: list[tuple[str, dict[str, Any] | None, Any]] = [
            ("transformation", {"summary": "too early"}, "coach"),
            ("graduation", {"session_cadence_days": 30}, "coach"),
            ("graduate", None, "coach"),
            ("follow-ups", {"scores": {"energy": 3}}, "coach"),
            ("testimonial", {"text": "hi", "consent_to_publish": False}, "client"),
            ("homework/anything/claim", None, "client"),
            ("homework/anything/verification", {"outcome": "confirmed"}, "coach"),
        ]
        for path, body, role in in_commitment:
            problem = await journey.refused(path, body, role=role, status=409)
            assert problem["status"] == 409 and problem["detail"]
        await journey.send("plan")
        await journey.refused("plan", status=409)
        await journey.refused("graduate", status=409)
        await journey.send("transformation", {"summary": "done"})
        await journey.refused("transformation", {"summary": "again"}, status=409)
        view = await journey.stage()
        assert view["stage"] == "transformation" and view["version"] == 3


async def test_every_invalid_body_is_a_422_problem_naming_the_field(stack: Stack) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        await journey.send("plan")
        cases: list[tuple[str, dict[str, Any] | None, str]] = [
            ("homework", {"due_at": DUE}, "title"),
            ("homework", {"title": "t", "due_at": "2030-01-01T09:00:00"}, "due_at"),
            ("homework", {"title": "", "due_at": DUE}, "title"),
            ("homework", {"title": "t", "due_at": DUE, "extra": 1}, "extra"),
            ("homework/h/verification", {"outcome": "maybe"}, "outcome"),
            ("sessions", {"held_at": HELD, "duration_minutes": 0}, "duration_minutes"),
            ("sessions", {"held_at": HELD, "duration_minutes": "50"}, "duration_minutes"),
            (
                "boundary-violations",
                {"violated_by": "supervisor", "kind": "other", "description": "d"},
                "violated_by",
            ),
            (
                "boundary-violations",
                {"violated_by": "coach", "kind": "rudeness", "description": "d"},
                "kind",
            ),
            ("boundary-violations", {"violated_by": "coach", "kind": "other"}, "description"),
            ("boundary-violations/v/resolution", {}, "steps"),
            ("transformation", {"summary": ""}, "summary"),
            ("self-checks", {"on_track": "yes"}, "on_track"),
            ("graduation", {"session_cadence_days": 0}, "session_cadence_days"),
            ("follow-ups", {"scores": {}}, "scores"),
            ("testimonial", {"text": "thanks"}, "consent_to_publish"),
            ("termination", {"reason": "bored"}, "reason"),
            ("termination", None, "body"),
        ]
        for path, body, field in cases:
            problem = await journey.refused(path, body, status=422)
            assert problem["title"] and problem["detail"]
            fields = {error["field"] for error in problem["errors"]}
            assert field in fields, (path, body, problem)


async def test_only_the_engagements_parties_may_act_and_read(stack: Stack) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http, supervisor=True)
        await journey.refused("plan", role="auditor", status=403)
        await journey.refused("plan", role="client", status=403)
        await journey.refused("plan", role="supervisor", status=403)
        forbidden = await journey.post("plan", role="coach", sub="another-coach")
        assert forbidden.status_code == 403
        anonymous = await http.post(f"/v1/engagements/{journey.engagement_id}/plan")
        assert anonymous.status_code == 401
        await journey.send("plan", role="admin")
        await journey.send("self-checks", {"on_track": True}, role="client")
        for role in ("coach", "client", "supervisor", "auditor", "admin"):
            assert (await journey.view(role=role))["stage"] == "working_the_plan"
            assert (await journey.view("/trust", role=role))["score"] == 100
        stranger = await http.get(
            f"/v1/engagements/{journey.engagement_id}/trust", headers=auth("client", "stranger")
        )
        assert stranger.status_code == 403


async def test_unknown_engagements_answer_404_before_they_open_and_before_as_of(
    stack: Stack,
) -> None:
    unknown = str(uuid.uuid4())
    admin = auth("admin", "ops")
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        for response in (
            await http.get(f"/v1/engagements/{unknown}", headers=admin),
            await http.get(f"/v1/engagements/{unknown}/trust", headers=admin),
            await http.post(f"/v1/engagements/{unknown}/plan", headers=admin),
            await http.post(
                f"/v1/engagements/{unknown}/homework",
                json={"title": "t", "due_at": DUE},
                headers=admin,
            ),
        ):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        journey = await open_engagement(stack, intake, http)
        opened_at = (await journey.stage())["stage_history"][0]["entered_at"]
        before = await http.get(
            f"/v1/engagements/{journey.engagement_id}",
            params={"as_of": "2000-01-01T00:00:00Z"},
            headers=admin,
        )
        assert before.status_code == 404
        naive = await http.get(
            f"/v1/engagements/{journey.engagement_id}",
            params={"as_of": "2000-01-01T00:00:00"},
            headers=admin,
        )
        assert naive.status_code == 422
        for not_a_time in (
            "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
            "9999-12-31T23:59:59-01:00",  # after year 9999 once in UTC
            "1700000000",
            "2026-13-01T00:00:00Z",
        ):
            for path in ("", "/trust"):
                refused = await http.get(
                    f"/v1/engagements/{journey.engagement_id}{path}",
                    params={"as_of": not_a_time},
                    headers=admin,
                )
                assert refused.status_code == 422, (not_a_time, refused.text)
                assert refused.json()["errors"][0]["field"] == "as_of"
        assert (await http.get("/health")).status_code == 200
        at_open = await journey.as_of(opened_at, "/trust")
        assert (at_open["score"], at_open["version"]) == (100, 1)


async def test_a_retried_command_returns_the_first_answer_and_writes_nothing(
    stack: Stack,
) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        key = {"Idempotency-Key": f"homework-{uuid.uuid4()}"}
        body = {"title": "Walk", "due_at": DUE}
        first = await journey.post("homework", body, headers=key)
        second = await journey.post("homework", body, headers=key)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert first.json()["stream_version"] == 3
        assert await journey.stored_version() == 3
        journey.version = 3
        assert (await journey.stage())["homework"]["assigned"] == 1
        different = await journey.post("homework", {**body, "title": "Run"}, headers=key)
        assert different.status_code == 422
        claim_key = {"Idempotency-Key": "claim-1"}
        homework_id = first.json()["homework_id"]
        claims = [
            await journey.post(f"homework/{homework_id}/claim", role="client", headers=claim_key)
            for _ in range(3)
        ]
        assert [c.status_code for c in claims] == [201, 201, 201]
        assert len({c.text for c in claims}) == 1
        assert await journey.stored_version() == 4


async def test_racing_commands_never_apply_against_the_same_version(stack: Stack) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        await journey.send("plan")

        sessions = await asyncio.gather(
            *(
                journey.post("sessions", {"held_at": HELD, "duration_minutes": 30 + n})
                for n in range(8)
            )
        )
        sessions += await asyncio.gather(
            *(
                journey.post("sessions", {"held_at": HELD, "duration_minutes": 60 + n})
                for n in range(20)
            )
        )
        statuses = Counter(response.status_code for response in sessions)
        assert statuses == {201: 28}  # different commands the state allows: all get in
        accepted = [r.json()["stream_version"] for r in sessions if r.status_code == 201]
        assert len(set(accepted)) == len(accepted)
        events = await journey.stored_events()
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
        held = [e for e in events if e.event_type == "SessionHeld"]
        assert len(held) == statuses[201]
        assert {e.stream_version for e in held} == set(accepted)
        journey.version = events[-1].stream_version

        racing = await asyncio.gather(
            *(journey.post("transformation", {"summary": f"s{n}"}) for n in range(2))
        )
        assert sorted(r.status_code for r in racing) == [201, 409]
        events = await journey.stored_events()
        assert [e.event_type for e in events].count("TransformationAchieved") == 1
        journey.version = events[-1].stream_version
        assert (await journey.stage())["sessions_held"] == statuses[201]


async def test_the_coach_lists_their_engagements_filtered_by_stage(stack: Stack) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        first = await open_engagement(stack, intake, http, coach_id=coach_id)
        second = await open_engagement(stack, intake, http, coach_id=coach_id)
        await second.send("plan")
        await second.stage()

        async def listed(role: Any, sub: str, stage: str | None = None) -> Any:
            params = {"stage": stage} if stage else None
            return await http.get(
                f"/v1/coaches/{coach_id}/engagements", params=params, headers=auth(role, sub)
            )

        both = {first.engagement_id, second.engagement_id}

        async def both_listed() -> list[Any] | None:  # lists are projections: eventually
            items: list[Any] = (await listed("coach", coach_id)).json()["items"]
            versions = {item["engagement_id"]: item["version"] for item in items}
            caught_up = versions.get(second.engagement_id) == second.version
            return items if set(versions) == both and caught_up else None

        everything = await eventually(both_listed)
        assert {item["engagement_id"] for item in everything} == both
        working = (await listed("coach", coach_id, "working_the_plan")).json()["items"]
        assert [(i["engagement_id"], i["stage"]) for i in working] == [
            (second.engagement_id, "working_the_plan")
        ]
        assert working[0]["version"] == second.version and "stage_history" in working[0]
        committed = (await listed("auditor", "audit-1", "commitment")).json()["items"]
        assert [i["engagement_id"] for i in committed] == [first.engagement_id]
        assert (await listed("admin", "ops", "graduated")).json() == {"items": []}
        assert (await listed("coach", coach_id, "nonsense")).status_code == 422
        assert (await listed("coach", "another-coach")).status_code == 403
        assert (await listed("client", first.client_id)).status_code == 403


async def test_a_rebuild_of_the_projections_from_the_store_equals_the_live_ones(
    stack: Stack,
) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey: Journey = await open_engagement(stack, intake, http, supervisor=True)
        homework_id = (await journey.send("homework", {"title": "t", "due_at": DUE}))["homework_id"]
        await journey.send(f"homework/{homework_id}/claim", role="client")
        await journey.send(f"homework/{homework_id}/verification", {"outcome": "refuted"})
        await journey.send(
            "boundary-violations",
            {"violated_by": "client", "kind": "other", "description": "late-night calls"},
        )
        for role in ("client", "coach", "client"):
            await journey.send(
                "relationship-checkins",
                {"ratings": {**dict.fromkeys(FACTORS, 4), "empathy": 2}, "comment": "so-so"},
                role=role,  # type: ignore[arg-type]
            )
        await journey.stage()
        await journey.trust()
        assert (await journey.view("/relationship"))["concerns"] == ["empathy"]

    database_url = stack.settings.database_url
    assert database_url is not None
    runner = stack.core("engagement").runner

    async def rebuilt_equals_live() -> bool:
        await runner.catch_up_all()
        rebuilt = await replay(database_url, "engagement", PROJECTIONS)
        live = await live_digests(database_url, "engagement", PROJECTIONS)
        assert {d.projection for d in live} == {
            "stage_view",
            "trust_view",
            "relationship_view",
            "coach_relationship",
        }
        return rebuilt.digests == live and all(d.documents > 0 for d in live)

    assert await eventually(rebuilt_equals_live, timeout=30.0, interval=0.5)
