"""The notifications stream of one engagement as a pure decider.

It knows the engagement's parties, which notifications it scheduled and dispatched, and which
deliveries are settled, so replanning a redelivered event or recording a repeated attempt
writes nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.notifications.domain.events import (
    EngagementPartiesRecorded,
    NotificationDelivered,
    NotificationDeliveryAttempted,
    NotificationDispatched,
    NotificationFailed,
    NotificationScheduled,
)
from services.notifications.domain.rules import (
    Parties,
    needs_parties,
    notifications_for,
    parties_in,
)
from shared.model.envelope import Envelope
from shared.model.events import Command, DomainEvent


class PlanNotifications(Command):
    """Plan what these incoming events (in order) call for."""

    incoming: list[Envelope]


class DispatchNotification(Command):
    """Hand a due notification to the webhooks registered for its recipient."""

    notification_id: str
    webhook_ids: list[str]
    at: datetime


class RecordAttempt(Command):
    """Record one delivery attempt; settle the delivery on success or a spent budget."""

    notification_id: str
    webhook_id: str
    attempt: int
    max_attempts: int
    status_code: int | None
    error: str | None
    at: datetime
    retry_at: datetime


@dataclass(frozen=True)
class Notifications:
    """What one engagement's notifications stream has decided so far."""

    parties: Parties | None = None
    scheduled: frozenset[str] = frozenset()
    dispatched: frozenset[str] = frozenset()
    settled: frozenset[tuple[str, str]] = frozenset()


def initial() -> Notifications:
    return Notifications()


def owner(state: Notifications) -> str | None:
    return None  # notifications carry no personal data


def evolve(state: Notifications, event: DomainEvent) -> Notifications:
    match event:
        case EngagementPartiesRecorded():
            parties = Parties(event.client_id, event.coach_id, event.supervisor_id)
            return replace(state, parties=parties)
        case NotificationScheduled():
            return replace(state, scheduled=state.scheduled | {event.notification_id})
        case NotificationDispatched():
            return replace(state, dispatched=state.dispatched | {event.notification_id})
        case NotificationDelivered() | NotificationFailed():
            delivery = (event.notification_id, event.webhook_id)
            return replace(state, settled=state.settled | {delivery})
    return state


def waiting_for_parties(state: Notifications, envelope: Envelope) -> bool:
    """True when an event cannot be planned yet: its engagement's parties are not known."""
    return state.parties is None and needs_parties(envelope)


def succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def _plan(state: Notifications, incoming: Sequence[Envelope]) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    for envelope in incoming:
        parties = parties_in(envelope)
        if parties is not None and state.parties is None:
            recorded = EngagementPartiesRecorded(
                engagement_id=envelope.stream_id,
                client_id=parties.client_id,
                coach_id=parties.coach_id,
                supervisor_id=parties.supervisor_id,
                cause_event_id=envelope.event_id,
            )
            events.append(recorded)
            state = evolve(state, recorded)
        if state.parties is None:
            continue
        for plan in notifications_for(state.parties, envelope):
            if plan.notification_id in state.scheduled:
                continue
            scheduled = NotificationScheduled(
                notification_id=plan.notification_id,
                kind=plan.kind,
                recipient=plan.recipient,
                engagement_id=plan.engagement_id,
                due_at=plan.due_at,
                cause_event_id=envelope.event_id,
            )
            events.append(scheduled)
            state = evolve(state, scheduled)
    return events


def _attempt(state: Notifications, command: RecordAttempt) -> list[DomainEvent]:
    ok = succeeded(command.status_code)
    settled = (command.notification_id, command.webhook_id) in state.settled
    last = command.attempt >= command.max_attempts
    retry = not ok and not last and not settled
    events: list[DomainEvent] = [
        NotificationDeliveryAttempted(
            notification_id=command.notification_id,
            webhook_id=command.webhook_id,
            attempt=command.attempt,
            succeeded=ok,
            status_code=command.status_code,
            error=None if ok else command.error,
            attempted_at=command.at,
            next_attempt_at=command.retry_at if retry else None,
        )
    ]
    if settled:
        return events
    if ok:
        events.append(
            NotificationDelivered(
                notification_id=command.notification_id,
                webhook_id=command.webhook_id,
                attempts=command.attempt,
                delivered_at=command.at,
            )
        )
    elif last:
        events.append(
            NotificationFailed(
                notification_id=command.notification_id,
                webhook_id=command.webhook_id,
                attempts=command.attempt,
                last_error=command.error,
                failed_at=command.at,
            )
        )
    return events


def decide(state: Notifications, command: Command) -> Sequence[DomainEvent]:
    match command:
        case PlanNotifications():
            return _plan(state, command.incoming)
        case DispatchNotification():
            if (
                command.notification_id not in state.scheduled
                or command.notification_id in state.dispatched
                or not command.webhook_ids
            ):
                return []
            return [
                NotificationDispatched(
                    notification_id=command.notification_id,
                    webhook_ids=sorted(command.webhook_ids),
                    dispatched_at=command.at,
                )
            ]
        case RecordAttempt():
            if command.notification_id not in state.dispatched:
                return []
            return _attempt(state, command)
    raise TypeError(f"notifications cannot handle {type(command).__name__}")
