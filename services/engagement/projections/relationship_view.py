"""The relationship view (`GET /v1/engagements/{id}/relationship`, contract section 7): a pure
fold of the engagement stream, figured with the same rules the domain decides with.

Every engagement event folds in (so `version` is the stream's last version, as for the stage
view). The document also keeps, for the fold only, each rater's last three ratings (`recent`);
`public` drops it. Comments stay encrypted in the document; the read decrypts them for
authorised readers.
"""

from __future__ import annotations

from typing import Any

from services.engagement.domain import relationship
from services.engagement.domain.events import FACTORS, registry
from services.engagement.projections.stage_view import key
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

RATERS = ("client", "coach")
PUBLIC = (
    "engagement_id",
    "client_id",
    "coach_id",
    "supervisor_id",
    "checkins",
    "latest",
    "average",
    "gaps",
    "concerns",
    "health",
    "comments",
    "erased",
    "version",
)


MOVES_RELATIONSHIP = frozenset(
    {
        "RelationshipCheckInRecorded",
        "RelationshipConcernRaised",
        "RelationshipConcernResolved",
        "ClientDataErased",
    }
)


def opened(data: dict[str, Any]) -> Document:
    """The view of an engagement without check-ins: counts 0, nulls, empty figures."""
    return {
        "engagement_id": data["engagement_id"],
        "client_id": data["client_id"],
        "coach_id": data["coach_id"],
        "supervisor_id": data.get("supervisor_id"),
        "checkins": dict.fromkeys(RATERS, 0),
        "latest": dict.fromkeys(RATERS),
        "average": {},
        "gaps": {},
        "concerns": [],
        "health": None,
        "comments": dict.fromkeys(RATERS),
        "recent": {rater: [] for rater in RATERS},
    }


def _checked_in(view: Document, data: dict[str, Any]) -> None:
    rater: str = data["rater"]
    ratings = relationship.in_order(data["ratings"])
    view["checkins"] = {**view["checkins"], rater: view["checkins"][rater] + 1}
    view["latest"] = {**view["latest"], rater: ratings}
    view["comments"] = {**view["comments"], rater: data.get("comment")}
    recent = relationship.recent(view["recent"][rater], ratings)
    view["recent"] = {**view["recent"], rater: recent}
    view["average"] = {**view["average"], rater: relationship.means(recent)}
    view["gaps"] = relationship.gaps(view["latest"]["coach"], view["latest"]["client"])
    client = view["latest"]["client"]
    view["health"] = None if client is None else relationship.health(client)


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data = envelope.data
    if envelope.event_type == "EngagementOpened":
        return document or opened(data)
    if document is None:
        return None
    if envelope.event_type not in MOVES_RELATIONSHIP:
        return document  # only `version` moves on
    view = dict(document)
    match envelope.event_type:
        case "RelationshipCheckInRecorded":
            _checked_in(view, data)
        case "RelationshipConcernRaised":
            raised = {*view["concerns"], data["factor"]}
            view["concerns"] = [factor for factor in FACTORS if factor in raised]
        case "RelationshipConcernResolved":
            view["concerns"] = [factor for factor in view["concerns"] if factor != data["factor"]]
        case "ClientDataErased":
            view["erased"] = True
    return view


def public(view: Document) -> Document:
    """The view as readers get it: without the fold's working figures."""
    return {name: view[name] for name in PUBLIC if name in view}


relationship_view = Projection(name="relationship_view", key=key, fold=fold, registry=registry)
