"""The notifications stream as a pure decider over planned notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.notifications.domain.events import NotificationScheduled
from services.notifications.domain.rules import Planned
from shared.events import Command, DomainEvent


class ScheduleNotifications(Command):
    cause_event_id: str
    planned: list[Planned]


@dataclass(frozen=True)
class Notifications:
    """The ids already scheduled on one engagement's stream."""

    scheduled: frozenset[str] = frozenset()


def initial() -> Notifications:
    return Notifications()


def owner(state: Notifications) -> str | None:
    return None  # notifications carry no personal data


def evolve(state: Notifications, event: DomainEvent) -> Notifications:
    if isinstance(event, NotificationScheduled):
        return replace(state, scheduled=state.scheduled | {event.notification_id})
    return state


def decide(state: Notifications, command: Command) -> Sequence[DomainEvent]:
    if isinstance(command, ScheduleNotifications):
        return [
            NotificationScheduled(
                notification_id=plan.notification_id,
                kind=plan.kind,
                recipient=plan.recipient,
                engagement_id=plan.engagement_id,
                due_at=plan.due_at,
                cause_event_id=command.cause_event_id,
            )
            for plan in command.planned
            if plan.notification_id not in state.scheduled
        ]
    raise TypeError(f"notifications cannot handle {type(command).__name__}")
