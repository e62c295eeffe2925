"""The intake view (`GET /v1/intakes/{id}`): a pure fold of the intake stream's envelopes.

Personal values stay as the stored tokens; the read path decrypts them for authorised callers.
"""

from __future__ import annotations

from typing import Any

from services.intake.domain.events import registry
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

INTAKE_EVENTS = {
    "IntakeStarted",
    "BaselineAssessed",
    "GoalSet",
    "AgreementSigned",
    "ClientCommitted",
    "ClientErased",
}


def key(envelope: Envelope) -> str | None:
    return envelope.stream_id if envelope.event_type in INTAKE_EVENTS else None


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data: dict[str, Any] = envelope.data
    if envelope.event_type == "IntakeStarted":
        return {
            "engagement_id": data["engagement_id"],
            "client_id": data["client_id"],
            "coach_id": data["coach_id"],
            "supervisor_id": data.get("supervisor_id"),
            "client": data["client"],
            "status": "open",
            "assessments": [],
            "goals": [],
            "agreement_signed": False,
            "session_cadence_days": None,
            "started_at": envelope.occurred_at,
            "committed_at": None,
        }
    if document is None:
        return None
    view = dict(document)
    match envelope.event_type:
        case "BaselineAssessed":
            view["assessments"] = [*view["assessments"], dict(data)]
        case "GoalSet":
            view["goals"] = [*view["goals"], dict(data)]
        case "AgreementSigned":
            view["agreement_signed"] = True
            view["session_cadence_days"] = data["session_cadence_days"]
            view["contact_channels"] = data["contact_channels"]
            view["contact_hours"] = data["contact_hours"]
        case "ClientCommitted":
            view["status"] = "committed"
            view["committed_at"] = data["committed_at"]
        case "ClientErased":
            view["erased_at"] = data["erased_at"]
    return view


intake_view = Projection(name="intake_view", key=key, fold=fold, registry=registry)
