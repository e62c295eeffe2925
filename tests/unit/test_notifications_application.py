"""Notifications' use cases over in-memory ports: planning from incoming events (parked until
the engagement's parties are known), webhook registration and listing, without a database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifications.application.services import NotificationService
from services.notifications.projections import PROJECTIONS
from shared.model.clock import FixedClock
from shared.model.envelope import Envelope
from shared.model.errors import ForbiddenByState, InvalidCommand
from shared.security.tokens import PermissionDenied, Principal
from tests.fakes import MemoryEventStore, ports
from tests.integration.webhook_support import client_committed, sealed

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@dataclass
class MemoryTables:
    """The operational tables in memory: the queue, parked events, webhooks."""

    queued: list[Envelope] = field(default_factory=list)
    waiting: dict[str, list[Envelope]] = field(default_factory=dict)
    webhooks: list[tuple[str, str, str, str]] = field(default_factory=list)

    async def lock_stream(self, conn: Any, engagement_id: str) -> None:
        return None

    async def parked(self, conn: Any, engagement_id: str) -> list[Envelope]:
        return list(self.waiting.get(engagement_id, []))

    async def park(self, conn: Any, envelope: Envelope) -> None:
        self.waiting.setdefault(envelope.stream_id, []).append(envelope)

    async def unpark(self, conn: Any, event_ids: Sequence[str]) -> None:
        for stream, envelopes in self.waiting.items():
            self.waiting[stream] = [e for e in envelopes if e.event_id not in event_ids]

    async def enqueue(self, conn: Any, scheduled: Sequence[Envelope]) -> None:
        self.queued += [e for e in scheduled if e.event_type == "NotificationScheduled"]

    async def webhooks_of_recipient_locked(self, conn: Any, recipient: str) -> int:
        return sum(1 for _, registered, _, _ in self.webhooks if registered == recipient)

    async def insert_webhook(
        self,
        conn: Any,
        webhook_id: str,
        recipient: str,
        url: str,
        secret: str,
        created_by: str,
        at: datetime,
    ) -> None:
        self.webhooks.append((webhook_id, recipient, secret, created_by))


def notifier() -> tuple[NotificationService, MemoryEventStore, MemoryTables]:
    clock = FixedClock(AT)
    units, documents, vault, store = ports("notifications", clock, PROJECTIONS)
    tables = MemoryTables()
    return NotificationService(units, documents, vault, clock, tables), store, tables


async def receive(service: NotificationService, store: MemoryEventStore, event: Envelope) -> None:
    async with service.units.transaction() as unit:
        await service.on_event(unit, event)


def recipients(tables: MemoryTables) -> list[tuple[str, str]]:
    return sorted((e.data["kind"], e.data["recipient"]) for e in tables.queued)


async def test_client_committed_plans_the_welcomes_and_queues_them() -> None:
    service, store, tables = notifier()
    await receive(service, store, client_committed("e-1", "co-1", "cl-1", at=AT))
    assert recipients(tables) == [("welcome", "client:cl-1"), ("welcome", "coach:co-1")]
    assert "EngagementPartiesRecorded" in [e.event_type for e in store.events("e-1")]


async def test_an_event_before_its_parties_waits_and_is_planned_when_they_arrive() -> None:
    service, store, tables = notifier()
    claimed = sealed("HomeworkClaimed", "e-1", {"homework_id": "h-1"}, at=AT)
    await receive(service, store, claimed)
    assert tables.queued == [] and [e.event_id for e in tables.waiting["e-1"]] == [claimed.event_id]
    await receive(service, store, client_committed("e-1", "co-1", "cl-1", at=AT))
    assert ("claim_to_verify", "coach:co-1") in recipients(tables)
    assert tables.waiting["e-1"] == []


async def test_a_webhook_is_registered_for_oneself_and_its_secret_stored_sealed() -> None:
    service, _, tables = notifier()
    coach = Principal("coach", "co-1")
    reply = await service.register_webhook(coach, "coach:co-1", "https://x.test/h", "s3", None)
    assert reply["recipient"] == "coach:co-1" and reply["stream_version"] == 1
    [(webhook_id, recipient, secret, created_by)] = tables.webhooks
    assert (webhook_id, recipient, created_by) == (reply["webhook_id"], "coach:co-1", "coach:co-1")
    assert secret != "s3" and service.vault.open_secret(secret, f"webhook:{webhook_id}") == "s3"
    with pytest.raises(PermissionDenied):
        await service.register_webhook(coach, "coach:co-2", "https://x.test/h", "s3", None)


async def test_a_recipient_s_twenty_first_webhook_is_refused_and_nothing_is_stored() -> None:
    service, _, tables = notifier()
    client = Principal("client", "cl-1")
    for n in range(20):
        await service.register_webhook(client, "client:cl-1", f"https://x.test/{n}", "s", None)
    with pytest.raises(ForbiddenByState, match="20 webhooks"):
        await service.register_webhook(client, "client:cl-1", "https://x.test/21", "s", None)
    assert len(tables.webhooks) == 20
    # another recipient has its own twenty
    await service.register_webhook(
        Principal("admin", "ops"), "coach:co-1", "https://x.test/h", "s", None
    )
    assert len(tables.webhooks) == 21


async def test_a_webhook_url_the_rules_refuse_is_invalid_and_nothing_is_stored() -> None:
    service, _, tables = notifier()
    coach = Principal("coach", "co-1")
    for url in ("https://user:pass@x.test/h", "http://127.0.0.1:18099:99/", "http://xn--/"):
        with pytest.raises(InvalidCommand) as refused:
            await service.register_webhook(coach, "coach:co-1", url, "s", None)
        assert refused.value.field == "url" and refused.value.status == 422
    assert tables.webhooks == []


async def test_a_recipient_lists_their_own_notifications_and_readers_list_everyones() -> None:
    service, store, _ = notifier()
    await receive(service, store, client_committed("e-1", "co-1", "cl-1", at=AT))
    mine = await service.list_for(Principal("coach", "co-1"), "coach:co-1")
    assert [(item["kind"], item["status"]) for item in mine["items"]] == [("welcome", "pending")]
    everyone = await service.list_for(Principal("auditor", "au"), "*")
    assert len(everyone["items"]) == 2
    with pytest.raises(PermissionDenied):
        await service.list_for(Principal("client", "cl-1"), "coach:co-1")
