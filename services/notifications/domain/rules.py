"""Notification rules: a pure function from an incoming event to the notifications it causes.

Engagement events carry only the engagement's id, so the rules take the engagement's parties
(learnt from `ClientCommitted` and kept in the notifications stream) with the event. Due times
come from the event's own times, never from a clock: the same event always plans the same list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.model.envelope import Envelope, parse_time

NAMESPACE = uuid.UUID("7d0c5f1e-6c1f-4b8e-9a59-3f1d6f0b2a10")

FOLLOW_UP_AFTER = (timedelta(days=90), timedelta(days=180))
TESTIMONIAL_AFTER = timedelta(days=90)

CLIENT_COMMITTED = "ClientCommitted"
ENGAGEMENT_EVENTS = frozenset(
    {
        "HomeworkClaimed",
        "DeceptionPatternDetected",
        "BoundaryViolated",
        "SupervisionRecommended",
        "EngagementTerminated",
        "Graduated",
        "RelationshipConcernRaised",
    }
)
HANDLED = ENGAGEMENT_EVENTS | {CLIENT_COMMITTED}
KINDS = (
    "welcome",
    "claim_to_verify",
    "deception_pattern",
    "boundary_violation",
    "supervision_recommended",
    "engagement_ended",
    "follow_up_due",
    "testimonial_request",
    "relationship_concern",
)


@dataclass(frozen=True)
class Parties:
    """The ids of an engagement's coach, client and (optional) supervisor."""

    client_id: str
    coach_id: str
    supervisor_id: str | None = None

    @property
    def client(self) -> list[str]:
        return [f"client:{self.client_id}"]

    @property
    def coach(self) -> list[str]:
        return [f"coach:{self.coach_id}"]

    @property
    def supervisor(self) -> list[str]:
        return [f"supervisor:{self.supervisor_id}"] if self.supervisor_id else []


@dataclass(frozen=True)
class Planned:
    """One notification an event calls for."""

    notification_id: str
    kind: str
    recipient: str
    engagement_id: str
    due_at: datetime


def notification_id(cause_event_id: str, kind: str, recipient: str, due_at: datetime) -> str:
    """Deterministic, so a redelivered event plans the same ids."""
    return str(uuid.uuid5(NAMESPACE, f"{cause_event_id}|{kind}|{recipient}|{due_at.isoformat()}"))


def parties_in(envelope: Envelope) -> Parties | None:
    """The parties an event names (only `ClientCommitted` does)."""
    if envelope.event_type != CLIENT_COMMITTED:
        return None
    data = envelope.data
    supervisor = data.get("supervisor_id")
    return Parties(
        client_id=str(data["client_id"]),
        coach_id=str(data["coach_id"]),
        supervisor_id=str(supervisor) if supervisor else None,
    )


def needs_parties(envelope: Envelope) -> bool:
    """Whether planning this event needs the parties recorded from an earlier event."""
    return envelope.event_type in ENGAGEMENT_EVENTS


def _time(data: dict[str, Any], name: str, default: datetime) -> datetime:
    value = data.get(name)
    return parse_time(value) if isinstance(value, str) else default


def _recipients(parties: Parties, envelope: Envelope) -> list[tuple[str, list[str], timedelta]]:
    """(kind, recipients, delay after the event's time) for each notification an event causes."""
    now = timedelta(0)
    match envelope.event_type:
        case "ClientCommitted":
            return [("welcome", [*parties.client, *parties.coach], now)]
        case "HomeworkClaimed":
            return [("claim_to_verify", parties.coach, now)]
        case "DeceptionPatternDetected":
            return [("deception_pattern", parties.coach, now)]
        case "BoundaryViolated":
            by_coach = envelope.data.get("violated_by") == "coach"
            recipients = [*parties.coach, *(parties.supervisor if by_coach else [])]
            return [("boundary_violation", recipients, now)]
        case "SupervisionRecommended":  # for violations and relationship concerns alike
            return [("supervision_recommended", [*parties.coach, *parties.supervisor], now)]
        case "RelationshipConcernRaised":
            return [("relationship_concern", parties.coach, now)]
        case "EngagementTerminated":
            return [("engagement_ended", [*parties.coach, *parties.client], now)]
        case "Graduated":
            return [
                *(("follow_up_due", [*parties.coach, *parties.client], d) for d in FOLLOW_UP_AFTER),
                ("testimonial_request", parties.client, TESTIMONIAL_AFTER),
            ]
    return []


def notifications_for(parties: Parties, envelope: Envelope) -> list[Planned]:
    """The notifications an event causes for an engagement with these parties.

    Immediate kinds are due when the event occurred; `Graduated` counts from `graduated_at`.
    """
    base = envelope.occurred
    if envelope.event_type == "Graduated":
        base = _time(envelope.data, "graduated_at", base)
    elif envelope.event_type == CLIENT_COMMITTED:
        base = _time(envelope.data, "committed_at", base)
    planned: list[Planned] = []
    for kind, recipients, delay in _recipients(parties, envelope):
        due_at = base + delay
        planned.extend(
            Planned(
                notification_id(envelope.event_id, kind, recipient, due_at),
                kind,
                recipient,
                envelope.stream_id,
                due_at,
            )
            for recipient in dict.fromkeys(recipients)
        )
    return planned
