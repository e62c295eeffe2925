"""The notification rules and the notifications decider, as pure functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain import notifications
from services.notifications.domain.events import (
    EngagementPartiesRecorded,
    NotificationDelivered,
    NotificationDeliveryAttempted,
    NotificationDispatched,
    NotificationFailed,
    NotificationScheduled,
)
from services.notifications.domain.notifications import (
    DispatchNotification,
    Notifications,
    PlanNotifications,
    RecordAttempt,
)
from services.notifications.domain.rules import KINDS, Parties, notifications_for
from shared.model.envelope import Envelope, format_time
from shared.model.events import DomainEvent
from tests.integration.webhook_support import sealed

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ENGAGEMENT = "e-1"
PARTIES = Parties(client_id="cl-1", coach_id="co-1", supervisor_id="su-1")


def envelope(event_type: str, data: dict[str, Any], *, at: datetime = AT) -> Envelope:
    return sealed(event_type, ENGAGEMENT, data, at=at)


def committed(supervisor_id: str | None = "su-1") -> Envelope:
    return envelope(
        "ClientCommitted",
        {
            "engagement_id": ENGAGEMENT,
            "client_id": "cl-1",
            "coach_id": "co-1",
            "supervisor_id": supervisor_id,
            "goals": [],
            "baselines": [],
            "session_cadence_days": 7,
            "committed_at": format_time(AT),
        },
    )


def planned(parties: Parties, event: Envelope) -> set[tuple[str, str, datetime]]:
    return {(p.kind, p.recipient, p.due_at) for p in notifications_for(parties, event)}


def fold(events: list[DomainEvent]) -> Notifications:
    state = notifications.initial()
    for event in events:
        state = notifications.evolve(state, event)
    return state


def test_client_committed_welcomes_the_client_and_the_coach() -> None:
    assert planned(PARTIES, committed()) == {
        ("welcome", "client:cl-1", AT),
        ("welcome", "coach:co-1", AT),
    }


def test_a_claimed_homework_asks_the_coach_to_verify_it() -> None:
    event = envelope("HomeworkClaimed", {"homework_id": "h-1"})
    assert planned(PARTIES, event) == {("claim_to_verify", "coach:co-1", AT)}


def test_a_deception_pattern_tells_the_coach() -> None:
    event = envelope("DeceptionPatternDetected", {})
    assert planned(PARTIES, event) == {("deception_pattern", "coach:co-1", AT)}


def test_a_violation_by_the_coach_also_tells_the_supervisor() -> None:
    by_coach = envelope("BoundaryViolated", {"violation_id": "v", "violated_by": "coach"})
    by_client = envelope("BoundaryViolated", {"violation_id": "w", "violated_by": "client"})
    assert planned(PARTIES, by_coach) == {
        ("boundary_violation", "coach:co-1", AT),
        ("boundary_violation", "supervisor:su-1", AT),
    }
    assert planned(PARTIES, by_client) == {("boundary_violation", "coach:co-1", AT)}


def test_a_violation_by_the_coach_without_a_supervisor_tells_only_the_coach() -> None:
    alone = Parties(client_id="cl-1", coach_id="co-1")
    event = envelope("BoundaryViolated", {"violation_id": "v", "violated_by": "coach"})
    assert planned(alone, event) == {("boundary_violation", "coach:co-1", AT)}


def test_a_supervision_recommendation_tells_the_coach_and_the_supervisor() -> None:
    event = envelope("SupervisionRecommended", {"party": "coach", "reason": "persistent"})
    assert planned(PARTIES, event) == {
        ("supervision_recommended", "coach:co-1", AT),
        ("supervision_recommended", "supervisor:su-1", AT),
    }


def test_a_relationship_concern_tells_the_coach_only() -> None:
    event = envelope("RelationshipConcernRaised", {"factor": "active_listening"})
    assert planned(PARTIES, event) == {("relationship_concern", "coach:co-1", AT)}


def test_a_supervision_recommended_for_a_relationship_concern_tells_coach_and_supervisor() -> None:
    event = envelope(
        "SupervisionRecommended",
        {"party": "coach", "reason": "relationship:empathy", "factor": "empathy"},
    )
    assert planned(PARTIES, event) == {
        ("supervision_recommended", "coach:co-1", AT),
        ("supervision_recommended", "supervisor:su-1", AT),
    }


def test_check_ins_and_resolved_concerns_call_for_no_notification() -> None:
    for event_type in ("RelationshipCheckInRecorded", "RelationshipConcernResolved"):
        assert notifications_for(PARTIES, envelope(event_type, {"factor": "empathy"})) == []


def test_a_termination_tells_the_coach_and_the_client() -> None:
    event = envelope("EngagementTerminated", {"reason": "mutual"})
    assert planned(PARTIES, event) == {
        ("engagement_ended", "coach:co-1", AT),
        ("engagement_ended", "client:cl-1", AT),
    }


def test_graduation_schedules_follow_ups_at_90_and_180_days_and_a_testimonial_at_90() -> None:
    graduated_at = AT + timedelta(hours=5)
    event = envelope("Graduated", {"graduated_at": format_time(graduated_at)})
    day90, day180 = graduated_at + timedelta(days=90), graduated_at + timedelta(days=180)
    assert planned(PARTIES, event) == {
        ("follow_up_due", "coach:co-1", day90),
        ("follow_up_due", "client:cl-1", day90),
        ("follow_up_due", "coach:co-1", day180),
        ("follow_up_due", "client:cl-1", day180),
        ("testimonial_request", "client:cl-1", day90),
    }


def test_every_kind_of_the_contract_has_a_rule() -> None:
    events = [
        committed(),
        envelope("HomeworkClaimed", {"homework_id": "h"}),
        envelope("DeceptionPatternDetected", {}),
        envelope("BoundaryViolated", {"violation_id": "v", "violated_by": "coach"}),
        envelope("SupervisionRecommended", {"party": "coach", "reason": "r"}),
        envelope("EngagementTerminated", {"reason": "other"}),
        envelope("Graduated", {"graduated_at": format_time(AT)}),
        envelope("RelationshipConcernRaised", {"factor": "empathy"}),
    ]
    kinds = {plan.kind for event in events for plan in notifications_for(PARTIES, event)}
    assert kinds == set(KINDS)


def test_events_that_call_for_nothing_plan_nothing() -> None:
    assert notifications_for(PARTIES, envelope("SessionHeld", {"held_at": "x"})) == []


def test_the_same_event_always_plans_the_same_notification_ids() -> None:
    event = envelope("Graduated", {"graduated_at": format_time(AT)})
    first = [p.notification_id for p in notifications_for(PARTIES, event)]
    assert first == [p.notification_id for p in notifications_for(PARTIES, event)]
    assert len(set(first)) == len(first)


@given(
    event_type=st.sampled_from(
        ["HomeworkClaimed", "DeceptionPatternDetected", "BoundaryViolated", "Graduated"]
    ),
    personal=st.dictionaries(
        st.sampled_from(["note", "description", "evidence", "title", "name", "email"]),
        st.text(min_size=1, max_size=30),
        max_size=6,
    ),
)
def test_notifications_carry_ids_kinds_and_times_only(
    event_type: str, personal: dict[str, str]
) -> None:
    event = envelope(event_type, {**personal, "violated_by": "coach"})
    recipients = {"coach:co-1", "client:cl-1", "supervisor:su-1"}
    for plan in notifications_for(PARTIES, event):
        assert plan.kind in KINDS and plan.recipient in recipients
        assert plan.engagement_id == ENGAGEMENT
        assert uuid.UUID(plan.notification_id).version == 5
        assert isinstance(plan.due_at, datetime)


def test_committing_records_the_parties_then_schedules_the_welcomes() -> None:
    events = notifications.decide(Notifications(), PlanNotifications(incoming=[committed()]))
    assert isinstance(events[0], EngagementPartiesRecorded)
    assert events[0].coach_id == "co-1" and events[0].supervisor_id == "su-1"
    assert [type(e) for e in events[1:]] == [NotificationScheduled, NotificationScheduled]


def test_an_engagement_event_before_the_parties_waits_for_them() -> None:
    claimed = envelope("HomeworkClaimed", {"homework_id": "h"})
    assert notifications.waiting_for_parties(Notifications(), claimed)
    assert not notifications.waiting_for_parties(Notifications(), committed())
    events = notifications.decide(
        Notifications(), PlanNotifications(incoming=[committed(), claimed])
    )
    kinds = [e.kind for e in events if isinstance(e, NotificationScheduled)]
    assert sorted(kinds) == ["claim_to_verify", "welcome", "welcome"]


def test_a_redelivered_event_schedules_nothing_new() -> None:
    event = committed()
    first = notifications.decide(Notifications(), PlanNotifications(incoming=[event]))
    state = fold(list(first))
    assert notifications.decide(state, PlanNotifications(incoming=[event])) == []


def scheduled_state() -> tuple[Notifications, str]:
    events = list(notifications.decide(Notifications(), PlanNotifications(incoming=[committed()])))
    notification_id = next(e for e in events if isinstance(e, NotificationScheduled))
    return fold(events), notification_id.notification_id


def attempt(notification_id: str, number: int, status_code: int | None) -> RecordAttempt:
    return RecordAttempt(
        notification_id=notification_id,
        webhook_id="w-1",
        attempt=number,
        max_attempts=3,
        status_code=status_code,
        error=None if status_code == 200 else "http_500",
        at=AT,
        retry_at=AT + timedelta(seconds=1),
    )


def test_a_notification_is_dispatched_once() -> None:
    state, notification_id = scheduled_state()
    command = DispatchNotification(notification_id=notification_id, webhook_ids=["w-1"], at=AT)
    events = notifications.decide(state, command)
    assert [type(e) for e in events] == [NotificationDispatched]
    assert (
        notifications.decide(
            fold([*events]) if False else notifications.evolve(state, events[0]), command
        )
        == []
    )


def test_a_2xx_answer_delivers_and_anything_else_is_retried_until_the_budget_is_spent() -> None:
    state, notification_id = scheduled_state()
    state = notifications.evolve(
        state,
        NotificationDispatched(
            notification_id=notification_id, webhook_ids=["w-1"], dispatched_at=AT
        ),
    )
    retried = notifications.decide(state, attempt(notification_id, 1, 500))
    assert [type(e) for e in retried] == [NotificationDeliveryAttempted]
    assert isinstance(retried[0], NotificationDeliveryAttempted)
    assert retried[0].next_attempt_at == AT + timedelta(seconds=1)
    delivered = notifications.decide(state, attempt(notification_id, 2, 200))
    assert [type(e) for e in delivered] == [NotificationDeliveryAttempted, NotificationDelivered]
    failed = notifications.decide(state, attempt(notification_id, 3, None))
    assert [type(e) for e in failed] == [NotificationDeliveryAttempted, NotificationFailed]


def test_an_attempt_on_a_settled_delivery_is_recorded_but_settles_nothing_again() -> None:
    state, notification_id = scheduled_state()
    for event in (
        NotificationDispatched(
            notification_id=notification_id, webhook_ids=["w-1"], dispatched_at=AT
        ),
        NotificationDelivered(
            notification_id=notification_id, webhook_id="w-1", attempts=1, delivered_at=AT
        ),
    ):
        state = notifications.evolve(state, event)
    again = notifications.decide(state, attempt(notification_id, 2, 200))
    assert [type(e) for e in again] == [NotificationDeliveryAttempted]
