"""The coach's relationship roll-up (`GET /v1/coaches/{coach_id}/relationship`, contract
section 7): one document per coach, folded across the coach's engagements.

The events name their coach (`EngagementOpened`, client check-ins and concerns carry
`coach_id`), so the document is found from the event alone. It keeps, per engagement with a
client check-in, the client's latest ratings and its open concerns, and the supervisors of the
coach's engagements (who may read it); from those, the figures the read answers. `version`
counts the events folded into the document (it spans many streams, so no one stream's version
would do).
"""

from __future__ import annotations

from typing import Any

from services.engagement.domain import relationship
from services.engagement.domain.events import FACTORS, registry
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

MINE = frozenset(
    {
        "EngagementOpened",
        "RelationshipCheckInRecorded",
        "RelationshipConcernRaised",
        "RelationshipConcernResolved",
    }
)


def key(envelope: Envelope) -> str | None:
    if envelope.event_type not in MINE:
        return None
    data = envelope.data
    if envelope.event_type == "RelationshipCheckInRecorded" and data.get("rater") != "client":
        return None  # the roll-up is the clients' view of their coach
    coach_id = data.get("coach_id")
    return coach_id if isinstance(coach_id, str) else None


def empty(coach_id: str) -> Document:
    return {
        "coach_id": coach_id,
        "engagements": 0,
        "average": {},
        "open_concerns": 0,
        "version": 0,
        "supervisors": [],
        "by_engagement": {},
    }


def _figured(view: Document) -> Document:
    rated = [entry["latest"] for entry in view["by_engagement"].values() if entry["latest"]]
    view["engagements"] = len(rated)
    view["average"] = relationship.means(rated)
    view["open_concerns"] = sum(len(e["open_concerns"]) for e in view["by_engagement"].values())
    return view


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data: dict[str, Any] = envelope.data
    view = dict(document or empty(data["coach_id"]))
    view["version"] += 1
    if envelope.event_type == "EngagementOpened":
        supervisor = data.get("supervisor_id")
        if supervisor:
            view["supervisors"] = sorted({*view["supervisors"], supervisor})
        return _figured(view)
    entries = dict(view["by_engagement"])
    entry = dict(entries.get(envelope.stream_id) or {"latest": None, "open_concerns": []})
    match envelope.event_type:
        case "RelationshipCheckInRecorded":
            entry["latest"] = relationship.in_order(data["ratings"])
        case "RelationshipConcernRaised":
            raised = {*entry["open_concerns"], data["factor"]}
            entry["open_concerns"] = [factor for factor in FACTORS if factor in raised]
        case "RelationshipConcernResolved":
            entry["open_concerns"] = [f for f in entry["open_concerns"] if f != data["factor"]]
    entries[envelope.stream_id] = entry
    view["by_engagement"] = entries
    return _figured(view)


def public(view: Document) -> Document:
    """The roll-up as readers get it."""
    return {
        name: view[name]
        for name in ("coach_id", "engagements", "average", "open_concerns", "version")
    }


coach_relationship = Projection(
    name="coach_relationship",
    key=key,
    fold=fold,
    registry=registry,
    partitioned=False,
    event_types=MINE,
)
