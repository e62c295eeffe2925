"""The trust view (`GET /v1/engagements/{id}/trust`): a pure fold of the engagement stream,
scored by the same rules the domain decides with."""

from __future__ import annotations

from services.engagement.domain import trust
from services.engagement.domain.events import registry
from services.engagement.projections.stage_view import key
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

MOVES_TRUST = frozenset(
    {
        "HomeworkClaimed",
        "HomeworkVerified",
        "DeceptionPatternDetected",
        "BoundaryViolated",
        "BoundaryViolationAddressed",
        "ClientDataErased",
    }
)


def _scored(view: Document) -> Document:
    view["score"] = trust.score(view["confirmed"], view["refuted"], view["open_client_violations"])
    view["deception_pattern"] = trust.deception_pattern(view["recent_outcomes"])
    return view


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data = envelope.data
    if envelope.event_type == "EngagementOpened":
        if document is not None:
            return document
        return _scored(
            {
                "engagement_id": data["engagement_id"],
                "client_id": data["client_id"],
                "coach_id": data["coach_id"],
                "supervisor_id": data.get("supervisor_id"),
                "confirmed": 0,
                "refuted": 0,
                "awaiting_verification": 0,
                "open_client_violations": 0,
                "recent_outcomes": [],
                "deception_patterns_detected": 0,
            }
        )
    if document is None:
        return None
    if envelope.event_type not in MOVES_TRUST:
        return document  # only `version` moves on
    view = dict(document)
    match envelope.event_type:
        case "HomeworkClaimed":
            view["awaiting_verification"] += 1
        case "HomeworkVerified":
            view[data["outcome"]] += 1
            view["awaiting_verification"] -= 1
            view["recent_outcomes"] = list(
                trust.most_recent(view["recent_outcomes"], data["outcome"])
            )
        case "DeceptionPatternDetected":
            view["deception_patterns_detected"] += 1
        case "BoundaryViolated" if data["violated_by"] == "client":
            view["open_client_violations"] += 1
        case "BoundaryViolationAddressed" if data["violated_by"] == "client":
            view["open_client_violations"] -= 1
        case "ClientDataErased":
            view["erased"] = True
    return _scored(view)


trust_view = Projection(name="trust_view", key=key, fold=fold, registry=registry)
