"""Relationship check-ins: recording one, and the concerns and supervision it causes (the
rules themselves are in `relationship`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from services.engagement.domain import relationship
from services.engagement.domain.commands import RecordRelationshipCheckIn
from services.engagement.domain.events import (
    FACTORS,
    RelationshipCheckInRecorded,
    RelationshipConcernRaised,
    RelationshipConcernResolved,
    Stage,
    SupervisionReason,
    SupervisionRecommended,
)
from services.engagement.domain.lifecycle import require_stage
from services.engagement.domain.state import Engagement
from shared.model.errors import InvalidCommand
from shared.model.events import DomainEvent

CHECK_IN_STAGES: tuple[Stage, ...] = ("working_the_plan", "transformation", "graduation")


def record(state: Engagement, command: RecordRelationshipCheckIn) -> Sequence[DomainEvent]:
    require_stage(state, CHECK_IN_STAGES, "a relationship check-in")
    if command.rater is None:
        raise InvalidCommand("an admin's check-in names its rater: client or coach", field="rater")
    if set(command.ratings) != set(FACTORS) or not all(
        relationship.LOWEST <= rating <= relationship.HIGHEST for rating in command.ratings.values()
    ):
        raise InvalidCommand("rate each of the six factors from 1 to 5", field="ratings")
    assert state.coach_id is not None
    ratings = relationship.in_order(command.ratings)
    events: list[DomainEvent] = [
        RelationshipCheckInRecorded(
            checkin_id=command.checkin_id,
            rater=command.rater,
            ratings=ratings,
            comment=command.comment,
            coach_id=state.coach_id,
            recorded_at=command.at,
        )
    ]
    if command.rater != "client":
        return events  # the coach's view of the relationship never opens or closes a concern
    judgement = relationship.judge(state.concerns, ratings)
    cause = {"checkin_id": command.checkin_id, "coach_id": state.coach_id}
    events += [
        RelationshipConcernResolved(factor=factor, resolved_at=command.at, **cause)
        for factor in judgement.resolved
    ]
    events += [
        RelationshipConcernRaised(factor=factor, raised_at=command.at, **cause)
        for factor in judgement.raised
    ]
    for factor in judgement.supervise:
        events.append(
            SupervisionRecommended(
                party="coach",
                reason=cast(SupervisionReason, f"relationship:{factor}"),
                checkin_id=command.checkin_id,
                factor=factor,
                supervisor_id=state.supervisor_id,
            )
        )
    return events
