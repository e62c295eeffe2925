"""The stage view (`GET /v1/engagements/{id}`): a pure fold of the engagement stream."""

from __future__ import annotations

from shared.envelope import Envelope
from shared.projections import Document, Projection


def key(envelope: Envelope) -> str | None:
    return envelope.stream_id


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data = envelope.data
    if envelope.event_type == "EngagementOpened":
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
        }
    return document


stage_view = Projection(name="stage_view", key=key, fold=fold)
