"""The delivery worker: due notifications to webhooks, signed, retried, every attempt recorded.

Each loop (1) dispatches due notifications: a `NotificationDispatched` event and one delivery
row per webhook, (2) leases due deliveries with FOR UPDATE SKIP LOCKED in a short transaction
(at most a few in flight per webhook, so a slow or dead receiver holds only its own slots),
(3) POSTs each outside any transaction in its own task, and (4) records the attempt as events
and settles the row, if its lease still holds. Several workers or instances share the tables
safely; a worker that dies mid-attempt leaves a lease that expires, and the attempt is made
again with the same notification id (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Gauge

from services.notifications.adapters import sender, tables
from services.notifications.adapters.tables import Claimed, DueNotification
from services.notifications.application.services import DECIDER
from services.notifications.domain import delivery, notifications
from services.notifications.domain.events import registry
from services.notifications.domain.notifications import DispatchNotification, RecordAttempt
from shared.model.clock import Clock
from shared.model.envelope import SYSTEM_ACTOR, Envelope, new_id
from shared.model.log import EventMetadata
from shared.resilience.retry import Backoff
from shared.runtime.config import Settings
from shared.usecases.commands import CommandRunner, Reply, Then
from shared.usecases.ports import UnitOfWork, UnitsOfWork, Vault

log = structlog.get_logger(__name__)

DELIVERIES = Counter(
    "rapport_notification_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retried, failed)",
    ["outcome"],
)
QUEUE_DEPTH = Gauge("rapport_notification_queue_depth", "Webhook deliveries not yet settled")
OLDEST_PENDING = Gauge(
    "rapport_notification_oldest_pending_seconds",
    "Seconds since the oldest unsettled delivery's notification fell due",
)


class DeliveryWorker:
    """Delivers due notifications to their webhooks; run one or many per database."""

    def __init__(
        self,
        units: UnitsOfWork,
        vault: Vault,
        clock: Clock,
        settings: Settings,
        *,
        wake: asyncio.Event,
        concurrency: int = 64,
        per_webhook: int = 4,
        poll_seconds: float = 0.2,
        stats_seconds: float = 1.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.units = units
        self.clock = clock
        self.timeout = settings.webhook_timeout_seconds
        self.max_attempts = settings.webhook_max_attempts
        self.base_backoff = settings.webhook_base_backoff_seconds
        self.allow_private = settings.webhook_allow_private_targets
        self.lease_seconds = 2 * self.timeout + 10.0
        self.concurrency = concurrency
        self.per_webhook = per_webhook
        self.poll_seconds = poll_seconds
        self.stats_seconds = stats_seconds
        self.jitter = jitter
        self.vault = vault
        self.runner = CommandRunner(units, registry, DECIDER)
        self.name = f"deliveries-{new_id()[:8]}"
        self._wake = wake
        self._inflight: dict[asyncio.Task[None], Claimed] = {}
        self._stats_at = 0.0

    def _metadata(self, correlation_id: str) -> EventMetadata:
        return EventMetadata(
            actor=SYSTEM_ACTOR, correlation_id=correlation_id, occurred_at=self.clock.now()
        )

    async def _append(
        self,
        stream_id: str,
        command: DispatchNotification | RecordAttempt,
        then: Then | None = None,
    ) -> None:
        """Run a command on an engagement's stream, then `then(unit, appended)` in the same
        transaction (the append stays its first write); a lost race runs both again."""

        async def attempt(unit: UnitOfWork) -> Reply:
            await tables.lock_stream(unit, stream_id)
            return await self.runner.execute_in(
                unit,
                stream_id,
                lambda state: notifications.decide(state, command),
                self._metadata(command.notification_id),
                lambda state, envelopes: {},
                creates=True,
                then=then,
            )

        await self.runner.transact(attempt)

    # ------------------------------------------------------------------ dispatching

    async def dispatch_due(self, limit: int = 100) -> int:
        """Turn due notifications into deliveries for the webhooks registered now."""
        now = self.clock.now()
        async with self.units.transaction() as unit:
            due = await tables.lease_due_notifications(unit, now, self.lease_seconds, limit)
        for item in due:
            await self._dispatch(item, now)
        return len(due)

    async def _dispatch(self, item: DueNotification, now: datetime) -> None:
        async with self.units.statements() as unit:
            webhook_ids = await tables.webhooks_for(unit, item.recipient)
        if not webhook_ids:
            return  # nobody to tell yet: the lease runs out and it is due again
        command = DispatchNotification(
            notification_id=item.notification_id, webhook_ids=webhook_ids, at=now
        )

        async def deliveries(unit: UnitOfWork, appended: list[Envelope]) -> None:
            if appended:
                await tables.create_deliveries(unit, item.notification_id, webhook_ids, now)
            else:
                await tables.mark_dispatched(unit, item.notification_id, now)

        await self._append(item.engagement_id, command, deliveries)

    # ------------------------------------------------------------------ delivering

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to `limit` due deliveries for this worker (a short transaction)."""
        if limit <= 0:
            return []
        async with self.units.transaction() as unit:
            return await tables.claim_deliveries(
                unit,
                self.clock.now(),
                self.lease_seconds,
                new_id(),
                per_webhook=self.per_webhook,
                limit=limit,
            )

    async def attempt(self, http: httpx.AsyncClient, claimed: Claimed) -> None:
        """POST one notification to one webhook, then record how it went."""
        body = claimed.notice.body()
        answer = await sender.post(
            http,
            claimed.url,
            body,
            delivery.headers(
                claimed.notice,
                body,
                self.vault.open_secret(claimed.secret, f"webhook:{claimed.webhook_id}"),
            ),
            self.timeout,
        )
        await self.record(claimed, answer)

    async def record(self, claimed: Claimed, answer: sender.Answer) -> None:
        now = self.clock.now()
        retry_at = now + delivery.retry_delay(claimed.attempt, self.base_backoff, self.jitter())
        ok = notifications.succeeded(answer.status_code)
        last = claimed.attempt >= self.max_attempts
        status = "delivered" if ok else "failed" if last else "pending"
        command = RecordAttempt(
            notification_id=claimed.notification_id,
            webhook_id=claimed.webhook_id,
            attempt=claimed.attempt,
            max_attempts=self.max_attempts,
            status_code=answer.status_code,
            error=answer.error,
            at=now,
            retry_at=retry_at,
        )

        async def settle(unit: UnitOfWork, appended: list[Envelope]) -> None:
            if not await tables.settle(unit, claimed, status, retry_at, answer.error):
                raise LostLease(claimed.notification_id)

        try:
            await self._append(claimed.engagement_id, command, settle)
        except LostLease:
            # Another worker took the delivery over after our lease ran out: the attempt
            # still happened, so it is recorded; the row is theirs to settle.
            log.warning("delivery_lease_lost", notification_id=claimed.notification_id)
            await self._append(claimed.engagement_id, command)
        DELIVERIES.labels("delivered" if ok else "failed" if last else "retried").inc()

    async def release(self, claims: Sequence[Claimed]) -> None:
        if claims:
            async with self.units.statements() as unit:
                await tables.release(unit, claims)

    # ------------------------------------------------------------------ the loop

    async def update_stats(self) -> None:
        async with self.units.statements() as unit:
            depth, age = await tables.queue_stats(unit, self.clock.now())
        QUEUE_DEPTH.set(depth)
        OLDEST_PENDING.set(age)

    async def step(self, http: httpx.AsyncClient) -> None:
        """Dispatch what fell due and start attempts for free slots."""
        await self.dispatch_due()
        for claimed in await self.claim(self.concurrency - len(self._inflight)):
            task = asyncio.create_task(self._guarded(http, claimed))
            self._inflight[task] = claimed
            task.add_done_callback(self._inflight.pop)
        loop = asyncio.get_running_loop()
        if loop.time() - self._stats_at >= self.stats_seconds:
            self._stats_at = loop.time()
            await self.update_stats()

    async def _guarded(self, http: httpx.AsyncClient, claimed: Claimed) -> None:
        try:
            await self.attempt(http, claimed)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the lease runs out and the attempt is made again
            log.warning(
                "delivery_attempt_unrecorded",
                notification_id=claimed.notification_id,
                error=repr(error),
            )

    async def _idle(self) -> None:
        """Wait for a commit, a finished attempt, or the poll interval."""
        wake = asyncio.ensure_future(self._wake.wait())
        waiters: set[asyncio.Future[Any]] = {wake, *self._inflight}
        try:
            await asyncio.wait(
                waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            wake.cancel()

    async def run(self) -> None:
        """Deliver until cancelled; unfinished attempts are handed back on the way out."""
        pacer = Backoff(first=0.1, most=5.0).pacer()
        async with sender.client(self.timeout, allow_private=self.allow_private) as http:
            try:
                while True:
                    self._wake.clear()
                    try:
                        await self.step(http)
                        pacer.succeeded()
                    except Exception as error:
                        pause = pacer.failed()
                        log.warning("delivery_loop_failed", error=repr(error), retry_in=pause)
                        await asyncio.sleep(pause)
                        continue
                    await self._idle()
            finally:
                await self._stop()

    async def _stop(self) -> None:
        tasks = list(self._inflight)
        claims = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await asyncio.wait_for(self.release(claims), 5.0)
        except Exception as error:  # their leases run out instead
            log.warning("delivery_release_failed", claims=len(claims), error=repr(error))
        else:
            log.info("delivery_worker_stopped", released=len(claims))


class LostLease(Exception):
    """The delivery's lease ran out and another worker claimed it."""
