"""Notifications use cases: planning from incoming events, webhooks, listing by recipient."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from services.notifications.application.access import LISTS, REGISTERS
from services.notifications.domain import notifications
from services.notifications.domain.events import registry
from services.notifications.domain.notifications import PlanNotifications
from services.notifications.domain.rules import HANDLED, parties_in
from services.notifications.domain.webhooks import MAX_WEBHOOKS_PER_RECIPIENT, url_problem
from services.notifications.projections.schedule import public, schedule
from shared.model.clock import Clock
from shared.model.envelope import Envelope, new_id, parse_time
from shared.model.errors import ForbiddenByState, InvalidCommand
from shared.model.events import Command
from shared.model.log import EventMetadata
from shared.security.tokens import Principal
from shared.usecases.access import EVERY_RECIPIENT, Subject, recipient_key, require
from shared.usecases.application import ApplicationService, Sent
from shared.usecases.commands import Decider, Reply
from shared.usecases.idempotency import IdempotencyKey
from shared.usecases.ports import Documents, UnitOfWork, UnitsOfWork, Vault

DECIDER = Decider(
    initial=notifications.initial, evolve=notifications.evolve, owner=notifications.owner
)


class RegisterWebhook(Command):
    """Send a recipient's notifications to a URL, signed with a secret (not an event: a row of
    the `webhooks` table)."""

    recipient: str
    url: str
    secret: str


class Tables(Protocol):
    """The operational tables planning and registration write (`adapters.tables`)."""

    async def lock_stream(self, unit: UnitOfWork, /, engagement_id: str) -> None: ...

    async def parked(self, unit: UnitOfWork, /, engagement_id: str) -> list[Envelope]: ...

    async def park(self, unit: UnitOfWork, /, envelope: Envelope) -> None: ...

    async def unpark(self, unit: UnitOfWork, /, event_ids: Sequence[str]) -> None: ...

    async def enqueue(self, unit: UnitOfWork, /, scheduled: Sequence[Envelope]) -> None: ...

    async def webhooks_of_recipient_locked(self, unit: UnitOfWork, /, recipient: str) -> int: ...

    async def insert_webhook(
        self,
        unit: UnitOfWork,
        webhook_id: str,
        recipient: str,
        url: str,
        secret: str,
        created_by: str,
        at: datetime,
    ) -> None: ...


class NotificationService(ApplicationService[notifications.Notifications]):
    """Plans notifications from events, registers webhooks and answers the schedule."""

    def __init__(
        self,
        units: UnitsOfWork,
        documents: Documents,
        vault: Vault,
        clock: Clock,
        tables: Tables,
    ) -> None:
        super().__init__(units, documents, vault, clock, registry, DECIDER, notifications.decide)
        self.tables = tables

    async def act(self, sent: Sent) -> Reply:
        """A caller's command: only `RegisterWebhook` (the planning commands come from events
        and the delivery worker)."""
        command_type = sent.command_type
        if command_type is not RegisterWebhook:
            raise ValueError(f"notifications take no {command_type.__name__} from callers")
        request = self.command(
            RegisterWebhook, sent.fields, self.clock.now(), validated=sent.validated
        )
        assert isinstance(request, RegisterWebhook)
        return await self.register_webhook(
            sent.principal, request.recipient, request.url, request.secret, sent.idempotency
        )

    async def on_event(self, unit: UnitOfWork, envelope: Envelope) -> None:
        """Plan an incoming event's notifications in the inbox's transaction.

        An engagement event that arrives before its `ClientCommitted` (another topic, so no
        order between them) is parked and planned when the parties arrive.
        """
        if envelope.event_type not in HANDLED:
            return
        # Serialises parking with the arrival of the parties, and with the delivery worker.
        await self.tables.lock_stream(unit, envelope.stream_id)
        earlier = await self.tables.parked(unit, envelope.stream_id) if parties_in(envelope) else []
        waiting = False

        def decide(state: notifications.Notifications) -> list[Any]:
            nonlocal waiting
            if notifications.waiting_for_parties(state, envelope):
                waiting = True
                return []
            command = PlanNotifications(incoming=[envelope, *earlier])
            return list(notifications.decide(state, command))

        appended: list[Envelope] = []

        def respond(state: notifications.Notifications, envelopes: list[Envelope]) -> Reply:
            appended.extend(envelopes)
            return {}

        await self.runner.execute_in(
            unit,
            envelope.stream_id,
            decide,
            EventMetadata.caused_by(envelope, occurred_at=self.clock.now()),
            respond,
            creates=True,
        )
        if waiting:
            await self.tables.park(unit, envelope)
            return
        await self.tables.enqueue(unit, appended)
        await self.tables.unpark(unit, [parked.event_id for parked in earlier])

    async def register_webhook(
        self,
        principal: Principal,
        recipient: str,
        url: str,
        secret: str,
        idempotency: IdempotencyKey | None,
    ) -> Reply:
        """A new webhook; its secret is stored sealed with the master key. A URL the rules
        refuse is 422, a recipient that has `MAX_WEBHOOKS_PER_RECIPIENT` already 409; neither
        writes anything."""
        refusal = "you may only register webhooks for yourself"
        require(principal, REGISTERS, Subject(recipient=recipient), refusal)
        problem = url_problem(url)
        if problem is not None:
            raise InvalidCommand(f"url {problem}", field="url")

        async def register(unit: UnitOfWork) -> Reply:
            if (
                await self.tables.webhooks_of_recipient_locked(unit, recipient)
                >= MAX_WEBHOOKS_PER_RECIPIENT
            ):
                raise ForbiddenByState(
                    f"{recipient} has {MAX_WEBHOOKS_PER_RECIPIENT} webhooks already,"
                    " the most one recipient may have"
                )
            webhook_id = new_id()
            await self.tables.insert_webhook(
                unit,
                webhook_id,
                recipient,
                url,
                self.vault.seal_secret(secret, f"webhook:{webhook_id}"),
                recipient_key(principal),
                self.clock.now(),
            )
            return {
                "webhook_id": webhook_id,
                "recipient": recipient,
                "url": url,
                "stream_version": 1,
            }

        return await self.runner.transact(register, idempotency=idempotency)

    async def list_for(self, principal: Principal, recipient: str, *, limit: int = 1000) -> Reply:
        refusal = "you may only list your own notifications"
        require(principal, LISTS, Subject(recipient=recipient), refusal)
        now = self.clock.now()
        items: list[dict[str, Any]] = []
        found = await self.documents.find(
            schedule.name,
            where={"recipient": None if recipient == EVERY_RECIPIENT else recipient},
            order_by=("due_at",),
            limit=limit,
        )
        for _, document, version in found:
            item = public(document)
            if item["status"] == "scheduled" and parse_time(item["due_at"]) <= now:
                item["status"] = "pending"
            item["version"] = version
            items.append(item)
        return {"items": items}
