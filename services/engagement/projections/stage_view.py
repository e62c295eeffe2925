"""The stage view (`GET /v1/engagements/{id}`): a pure fold of the engagement stream.

Every engagement event folds in (so `version` is the stream's last version); stage changes
append to `stage_history` with the event's `occurred_at`.
"""

from __future__ import annotations

from typing import Any

from services.engagement.domain.events import ENGAGEMENT_EVENTS, registry
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

EVENT_TYPES = frozenset(event.event_type for event in ENGAGEMENT_EVENTS)
STAGE_ENTERED = {
    "PlanStarted": "working_the_plan",
    "TransformationAchieved": "transformation",
    "GraduationStarted": "graduation",
    "Graduated": "graduated",
    "EngagementTerminated": "terminated",
}


MOVES_STAGE_VIEW = frozenset(
    {
        *STAGE_ENTERED,
        "RegressionDetected",
        "HomeworkAssigned",
        "HomeworkClaimed",
        "HomeworkVerified",
        "SessionHeld",
        "BoundaryViolated",
        "BoundaryViolationAddressed",
        "SupervisionRecommended",
        "ClientDataErased",
    }
)


def key(envelope: Envelope) -> str | None:
    return envelope.stream_id if envelope.event_type in EVENT_TYPES else None


def opened(envelope: Envelope) -> Document:
    data = envelope.data
    return {
        "engagement_id": data["engagement_id"],
        "client_id": data["client_id"],
        "coach_id": data["coach_id"],
        "supervisor_id": data.get("supervisor_id"),
        "stage": "commitment",
        "stage_history": [{"stage": "commitment", "entered_at": envelope.occurred_at}],
        "homework": {
            "assigned": 0,
            "claimed": 0,
            "confirmed": 0,
            "refuted": 0,
            "awaiting_verification": 0,
        },
        "open_violations": 0,
        "sessions_held": 0,
        "session_cadence_days": data["session_cadence_days"],
        "supervision_recommendations": 0,
        "opened_at": envelope.occurred_at,
        "graduated_at": None,
        "termination_reason": None,
    }


def _count(view: Document, name: str, delta: int = 1) -> None:
    view[name] = view[name] + delta


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    if envelope.event_type == "EngagementOpened":
        return document or opened(envelope)
    if document is None:
        return None
    if envelope.event_type not in MOVES_STAGE_VIEW:
        return document  # only `version` moves on
    data: dict[str, Any] = envelope.data
    view = dict(document)
    homework = dict(view["homework"])
    view["homework"] = homework
    stage = STAGE_ENTERED.get(envelope.event_type)
    if envelope.event_type == "RegressionDetected":
        stage = data["to_stage"]
    if stage is not None:
        view["stage"] = stage
        entry = {"stage": stage, "entered_at": envelope.occurred_at}
        view["stage_history"] = [*view["stage_history"], entry]
    match envelope.event_type:
        case "HomeworkAssigned":
            _count(homework, "assigned")
        case "HomeworkClaimed":
            _count(homework, "claimed")
            _count(homework, "awaiting_verification")
        case "HomeworkVerified":
            _count(homework, data["outcome"])
            _count(homework, "awaiting_verification", -1)
        case "SessionHeld":
            _count(view, "sessions_held")
        case "BoundaryViolated":
            _count(view, "open_violations")
        case "BoundaryViolationAddressed":
            _count(view, "open_violations", -1)
        case "SupervisionRecommended":
            _count(view, "supervision_recommendations")
        case "GraduationStarted":
            view["session_cadence_days"] = data["session_cadence_days"]
        case "Graduated":
            view["graduated_at"] = data["graduated_at"]
        case "EngagementTerminated":
            view["termination_reason"] = data["reason"]
        case "ClientDataErased":
            view["erased"] = True
    return view


stage_view = Projection(name="stage_view", key=key, fold=fold, registry=registry)
