"""Notifications use cases: planning from incoming events, webhooks, listing by recipient."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.notifications.adapters import tables
from services.notifications.domain import notifications
from services.notifications.domain.events import registry
from services.notifications.domain.notifications import PlanNotifications
from services.notifications.domain.rules import HANDLED, parties_in
from services.notifications.projections.schedule import public, schedule
from shared.auth import PermissionDenied, Principal
from shared.clock import Clock
from shared.commands import Body, CommandRunner, Decider, IdempotencyKey, remember, remembered
from shared.crypto import KeyVault
from shared.envelope import Envelope, new_id, parse_time
from shared.eventstore import ConcurrencyConflict, EventMetadata, EventStore

DECIDER = Decider(
    initial=notifications.initial, evolve=notifications.evolve, owner=notifications.owner
)


def may_list(principal: Principal, recipient: str) -> bool:
    if principal.role in ("admin", "auditor"):
        return True
    return recipient == f"{principal.role}:{principal.sub}"


def may_register(principal: Principal, recipient: str) -> bool:
    """Admins for anyone (and `*`); a coach, client or supervisor only for themselves."""
    if principal.is_admin:
        return True
    return principal.role in ("coach", "client", "supervisor") and recipient == (
        f"{principal.role}:{principal.sub}"
    )


class NotificationService:
    """Plans notifications from events, registers webhooks and answers the schedule."""

    def __init__(self, store: EventStore, vault: KeyVault, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.vault = vault
        self.runner = CommandRunner(store, registry, DECIDER, vault)

    async def on_event(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        """Plan an incoming event's notifications in the inbox's transaction.

        An engagement event that arrives before its `ClientCommitted` (another topic, so no
        order between them) is parked and planned when the parties arrive.
        """
        if envelope.event_type not in HANDLED:
            return
        # Serialises parking with the arrival of the parties, and with the delivery worker.
        await tables.lock_stream(conn, envelope.stream_id)
        earlier = await tables.parked(conn, envelope.stream_id) if parties_in(envelope) else []
        waiting = False

        def decide(state: notifications.Notifications) -> list[Any]:
            nonlocal waiting
            if notifications.waiting_for_parties(state, envelope):
                waiting = True
                return []
            command = PlanNotifications(incoming=[envelope, *earlier])
            return list(notifications.decide(state, command))

        appended: list[Envelope] = []

        def respond(state: notifications.Notifications, envelopes: list[Envelope]) -> Body:
            appended.extend(envelopes)
            return {}

        await self.runner.execute_in(
            conn,
            envelope.stream_id,
            decide,
            EventMetadata.caused_by(envelope, occurred_at=self.clock.now()),
            respond,
            creates=True,
        )
        if waiting:
            await tables.park(conn, envelope)
            return
        await tables.enqueue(conn, appended)
        await tables.unpark(conn, [parked.event_id for parked in earlier])

    async def register_webhook(
        self,
        principal: Principal,
        recipient: str,
        url: str,
        secret: str,
        idempotency: IdempotencyKey | None,
    ) -> Body:
        if not may_register(principal, recipient):
            raise PermissionDenied("you may only register webhooks for yourself")
        for _ in range(3):
            try:
                return await self._register(principal, recipient, url, secret, idempotency)
            except ConcurrencyConflict:
                continue  # the same Idempotency-Key raced: the next round answers the first
        raise ConcurrencyConflict("webhooks", None, None)

    async def _register(
        self,
        principal: Principal,
        recipient: str,
        url: str,
        secret: str,
        idempotency: IdempotencyKey | None,
    ) -> Body:
        webhook_id = new_id()
        async with self.store.transaction() as conn:
            if idempotency is not None:
                previous = await remembered(conn, idempotency)
                if previous is not None:
                    return previous
            await tables.insert_webhook(
                conn,
                webhook_id,
                recipient,
                url,
                self.vault.seal_secret(secret, f"webhook:{webhook_id}"),
                f"{principal.role}:{principal.sub}",
                self.clock.now(),
            )
            body: Body = {
                "webhook_id": webhook_id,
                "recipient": recipient,
                "url": url,
                "stream_version": 1,
            }
            if idempotency is not None:
                await remember(conn, idempotency, 201, body)
        return body

    async def list_for(self, principal: Principal, recipient: str, *, limit: int = 1000) -> Body:
        if not may_list(principal, recipient):
            raise PermissionDenied("you may only list your own notifications")
        now = self.clock.now()
        items: list[dict[str, Any]] = []
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT doc, version FROM documents WHERE projection = $1"
                " AND ($2 = '*' OR doc->>'recipient' = $2) ORDER BY doc->>'due_at', id LIMIT $3",
                schedule.name,
                recipient,
                limit,
            )
        for row in rows:
            item = public(json.loads(row["doc"]))
            if item["status"] == "scheduled" and parse_time(item["due_at"]) <= now:
                item["status"] = "pending"
            item["version"] = int(row["version"])
            items.append(item)
        return {"items": items}
