"""Whole engagements through HTTP and real Kafka: graduation, broken trust, boundaries."""

from __future__ import annotations

from datetime import timedelta

from shared.model.envelope import format_time, parse_time
from shared.security.tokens import Role
from tests.e2e.engagement_support import DUE, HELD, open_engagement, stages, trust_numbers
from tests.support import Stack


async def test_a_client_graduates_through_every_stage_with_follow_ups_and_a_testimonial(
    stack: Stack,
) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        view = await journey.stage()
        assert (view["stage"], view["version"], view["session_cadence_days"]) == (
            "commitment",
            1,
            7,
        )
        assert trust_numbers(await journey.trust()) == (100, 0, 0, 0, 0, False)

        first = await journey.send("homework", {"title": "Walk daily", "due_at": DUE})
        assert first["stream_version"] == 3  # PlanStarted and HomeworkAssigned together
        view = await journey.stage()
        assert stages(view) == ["commitment", "working_the_plan"]
        assert view["homework"]["assigned"] == 1

        homework = first["homework_id"]
        await journey.send(f"homework/{homework}/claim", {"note": "done"}, role="client")
        view = await journey.stage()
        assert view["homework"] == {
            "assigned": 1,
            "claimed": 1,
            "confirmed": 0,
            "refuted": 0,
            "awaiting_verification": 1,
        }
        assert trust_numbers(await journey.trust()) == (100, 0, 0, 1, 0, False)
        await journey.send(f"homework/{homework}/verification", {"outcome": "confirmed"})
        assert trust_numbers(await journey.trust()) == (100, 1, 0, 0, 0, False)

        await journey.send(
            "sessions", {"held_at": HELD, "duration_minutes": 50, "notes": "good progress"}
        )
        second = (await journey.send("homework", {"title": "Journal", "due_at": DUE}))[
            "homework_id"
        ]
        await journey.send(f"homework/{second}/claim", role="client")
        await journey.send(
            f"homework/{second}/verification", {"outcome": "refuted", "evidence": "blank pages"}
        )
        assert trust_numbers(await journey.trust()) == (75, 1, 1, 0, 0, False)
        await journey.send("boundary-reviews", {"notes": "contact hours respected"})

        await journey.send("transformation", {"summary": "runs 5k"})
        await journey.send("self-checks", {"on_track": False, "notes": "slipping"}, role="client")
        view = await journey.stage()
        assert view["stage"] == "working_the_plan"
        await journey.send("transformation", {"summary": "back on track"})
        await journey.send("self-checks", {"on_track": True}, role="coach")

        problem = await journey.refused("graduation", {"session_cadence_days": 7}, status=422)
        assert problem["errors"][0]["field"] == "session_cadence_days"
        await journey.send("graduation", {"session_cadence_days": 28})
        await journey.refused("follow-ups", {"scores": {"energy": 4}}, status=409)
        await journey.send("graduate")
        view = await journey.stage()
        assert stages(view) == [
            "commitment",
            "working_the_plan",
            "transformation",
            "working_the_plan",
            "transformation",
            "graduation",
            "graduated",
        ]
        assert view["session_cadence_days"] == 28 and view["sessions_held"] == 1
        assert view["graduated_at"] is not None

        await journey.send("follow-ups", {"scores": {"energy": 8}, "notes": "thriving"})
        await journey.refused(
            "testimonial", {"text": "Thank you", "consent_to_publish": True}, status=403
        )
        await journey.send(
            "testimonial", {"text": "Thank you", "consent_to_publish": True}, role="client"
        )
        await journey.refused("homework", {"title": "More", "due_at": DUE}, status=409)
        await journey.refused("termination", {"reason": "mutual"}, status=409)
        assert trust_numbers(await journey.trust()) == (75, 1, 1, 0, 0, False)

        # The log went to Kafka whole, in order, with the contract's data and no plaintext.
        published = await journey.published_events()
        assert [e.stream_version for e in published] == list(range(1, journey.version + 1))
        graduated = next(e for e in published if e.event_type == "Graduated")
        assert graduated.data["graduated_at"] == view["graduated_at"]
        verified = [e.data for e in published if e.event_type == "HomeworkVerified"]
        assert [(d["homework_id"], d["outcome"]) for d in verified] == [
            (homework, "confirmed"),
            (second, "refuted"),
        ]
        raw = "".join(e.to_json().decode() for e in published)
        for secret in ("blank pages", "runs 5k", "Thank you", "thriving", "Walk daily"):
            assert secret not in raw

        # As it stood: each stage entry answers the view of that moment, rebuilt from the log.
        history = view["stage_history"]
        at_transformation = await journey.as_of(history[2]["entered_at"])
        assert at_transformation["stage"] == "transformation"
        assert stages(at_transformation) == stages(view)[:3]
        just_before = format_time(parse_time(history[1]["entered_at"]) - timedelta(microseconds=1))
        early = await journey.as_of(just_before)
        assert (early["stage"], early["version"]) == ("commitment", 1)
        early_trust = await journey.as_of(history[2]["entered_at"], "/trust")
        assert trust_numbers(early_trust) == (75, 1, 1, 0, 0, False)


async def test_refuted_claims_reach_the_deception_pattern_and_the_coach_ends_for_broken_trust(
    stack: Stack,
) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http)
        homework = []
        for title in ("one", "two", "three", "four"):
            answer = await journey.send("homework", {"title": title, "due_at": DUE})
            homework.append(answer["homework_id"])
            await journey.send(f"homework/{homework[-1]}/claim", role="client")
        await journey.refused(f"homework/{homework[0]}/claim", role="client", status=409)
        await journey.refused(
            f"homework/{homework[0]}/claim", role="coach", status=403
        )  # claims are the client's
        expected = [
            ("confirmed", (100, 1, 0, 3, 0, False)),
            ("refuted", (75, 1, 1, 2, 0, False)),
            ("refuted", (60, 1, 2, 1, 0, False)),
            ("refuted", (50, 1, 3, 0, 0, True)),
        ]
        for homework_id, (outcome, numbers) in zip(homework, expected, strict=True):
            await journey.send(f"homework/{homework_id}/verification", {"outcome": outcome})
            assert trust_numbers(await journey.trust()) == numbers
        await journey.refused(
            f"homework/{homework[3]}/verification", {"outcome": "confirmed"}, status=409
        )

        await journey.send("termination", {"reason": "broken_trust", "notes": "pattern"})
        view = await journey.stage()
        assert view["stage"] == "terminated"
        assert view["termination_reason"] == "broken_trust"
        assert stages(view) == ["commitment", "working_the_plan", "terminated"]
        for path, body in (
            ("plan", None),
            ("homework", {"title": "again", "due_at": DUE}),
            ("sessions", {"held_at": HELD, "duration_minutes": 30}),
            ("transformation", {"summary": "no"}),
            ("termination", {"reason": "other"}),
        ):
            await journey.refused(path, body, status=409)

        events = await journey.published_events()
        detected = [e for e in events if e.event_type == "DeceptionPatternDetected"]
        assert len(detected) == 1
        verification = next(
            e
            for e in events
            if e.event_type == "HomeworkVerified" and e.data["homework_id"] == homework[3]
        )
        assert detected[0].stream_version == verification.stream_version + 1
        assert detected[0].correlation_id == verification.correlation_id
        terminated = events[-1]
        assert terminated.data["reason"] == "broken_trust"
        assert terminated.actor.role == "coach" and terminated.actor.id == journey.coach_id


async def test_boundary_violations_reach_supervision_and_one_is_resolved(stack: Stack) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        journey = await open_engagement(stack, intake, http, supervisor=True)
        await journey.send("plan")

        def violation(party: str, kind: str = "outside_agreed_contact") -> dict[str, str]:
            return {"violated_by": party, "kind": kind, "description": f"{party} did {kind}"}

        reported = []
        reports: list[tuple[Role, dict[str, str]]] = [
            ("supervisor", violation("client")),
            ("client", violation("coach", "role_overstep")),
            ("coach", violation("client", "inappropriate_disclosure")),
        ]
        for role, body in reports:
            reported.append(await journey.send("boundary-violations", body, role=role))
        view = await journey.stage()
        assert (view["open_violations"], view["supervision_recommendations"]) == (3, 0)
        assert trust_numbers(await journey.trust()) == (80, 0, 0, 0, 2, False)

        third = await journey.send("boundary-violations", violation("client"), role="admin")
        assert third["stream_version"] == journey.version
        view = await journey.stage()
        assert (view["open_violations"], view["supervision_recommendations"]) == (4, 1)
        assert trust_numbers(await journey.trust()) == (70, 0, 0, 0, 3, False)

        await journey.refused(
            "boundary-violations", violation("client"), role="auditor", status=403
        )
        other = await journey.post(
            "boundary-violations", violation("coach"), role="supervisor", sub="someone-else"
        )
        assert other.status_code == 403

        first_id = reported[0]["violation_id"]
        await journey.send(
            f"boundary-violations/{first_id}/resolution", {"steps": "reset contact hours"}
        )
        view = await journey.stage()
        assert view["open_violations"] == 3
        assert trust_numbers(await journey.trust()) == (80, 0, 0, 0, 2, False)
        await journey.refused(
            f"boundary-violations/{first_id}/resolution", {"steps": "again"}, status=409
        )
        await journey.refused(
            "boundary-violations/no-such-violation/resolution", {"steps": "x"}, status=404
        )

        breach = await journey.send(
            "boundary-violations", violation("coach", "confidentiality_breach"), role="client"
        )
        view = await journey.stage()
        assert (view["open_violations"], view["supervision_recommendations"]) == (4, 2)
        assert trust_numbers(await journey.trust()) == (80, 0, 0, 0, 2, False)

        events = await journey.published_events()
        assert [e.stream_version for e in events] == [
            e.stream_version for e in await journey.stored_events()
        ]
        recommended = [e for e in events if e.event_type == "SupervisionRecommended"]
        assert [(e.data["party"], e.data["reason"]) for e in recommended] == [
            ("client", "persistent_violations"),
            ("coach", "confidentiality_breach"),
        ]
        assert recommended[0].stream_version == third["stream_version"]
        assert recommended[1].stream_version == breach["stream_version"]
        assert all(e.data["supervisor_id"] == journey.supervisor_id for e in recommended)
        violated = [e.data for e in events if e.event_type == "BoundaryViolated"]
        assert {"violation_id", "violated_by", "kind"} <= set(violated[0])
        assert all(d["description"].startswith("enc:v2:") for d in violated)
