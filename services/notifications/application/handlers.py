"""Notifications use cases: planning from incoming events, and listing by recipient."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.notifications.domain import notifications
from services.notifications.domain.events import registry
from services.notifications.domain.notifications import ScheduleNotifications
from services.notifications.domain.rules import notifications_for
from services.notifications.projections.schedule import schedule
from shared.auth import PermissionDenied, Principal
from shared.clock import Clock
from shared.commands import Body, CommandRunner, Decider
from shared.crypto import KeyVault
from shared.envelope import SYSTEM_ACTOR, Envelope, parse_time
from shared.eventstore import EventMetadata, EventStore

DECIDER = Decider(
    initial=notifications.initial, evolve=notifications.evolve, owner=notifications.owner
)


def may_list(principal: Principal, recipient: str) -> bool:
    if principal.role in ("admin", "auditor"):
        return True
    return recipient == f"{principal.role}:{principal.sub}"


class NotificationService:
    """Plans notifications from events and answers the schedule."""

    def __init__(self, store: EventStore, vault: KeyVault, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.runner = CommandRunner(store, registry, DECIDER, vault)

    async def on_event(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        planned = notifications_for(
            envelope.event_type,
            envelope.event_id,
            envelope.stream_id,
            envelope.occurred,
            envelope.data,
        )
        if not planned:
            return
        command = ScheduleNotifications(cause_event_id=envelope.event_id, planned=planned)
        await self.runner.execute_in(
            conn,
            envelope.stream_id,
            lambda state: notifications.decide(state, command),
            EventMetadata(
                actor=SYSTEM_ACTOR,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.event_id,
                occurred_at=self.clock.now(),
            ),
            lambda state, _: {},
            creates=True,
        )

    async def list_for(self, principal: Principal, recipient: str) -> Body:
        if not may_list(principal, recipient):
            raise PermissionDenied("you may only list your own notifications")
        now = self.clock.now()
        items: list[dict[str, Any]] = []
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT doc FROM documents WHERE projection = $1 AND doc->>'recipient' = $2"
                " ORDER BY doc->>'due_at', id",
                schedule.name,
                recipient,
            )
        for row in rows:
            item = json.loads(row["doc"])
            if item["status"] == "scheduled" and parse_time(item["due_at"]) <= now:
                item["status"] = "pending"
            items.append(item)
        return {"items": items}
