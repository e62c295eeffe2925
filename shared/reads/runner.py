"""Keeping projections caught up with the log, across any number of instances of a service.

The work is cut into units, each with its own checkpoint: every partitioned projection of a
service is folded together in `segments` stream-hash segments (Axon's segments, Marten's
shards); each projection that spans streams is one unit of its own. An instance owns the units
it holds a PostgreSQL advisory lock for, on a connection kept for that: a killed instance's
locks go with its connection, and the others take its units over. Instances announce
themselves in `projection_runners`; each claims its fair share (units divided by the live
instances) and hands back what is above it, so folding grows with instances.

Within one instance, all its units are caught up in one transaction per round: a read per
unit, one load and one write of documents per projection, the checkpoints saved with them.
A commit anywhere wakes the runners: in-process at once, in other instances through the
event store's coalesced NOTIFY (`shared.storage.commits`), heard on the lease connection, and
by polling otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from shared.model.projections import Projection
from shared.reads.folding import Unapplied, apply_round
from shared.resilience.retry import Backoff
from shared.storage.checkpoints import (
    find_checkpoint,
    list_checkpoints,
    lock_checkpoints,
    save_checkpoint,
    save_checkpoints,
)
from shared.storage.eventstore import START, Checkpoint, EventStore, Segment, read_segmented
from shared.storage.parking import count_open, park
from shared.storage.projection_runners import announce, count_live, withdraw

__all__ = ["ProjectionRunner", "Unit"]

log = structlog.get_logger(__name__)

APPLIED = Counter("rapport_projection_events_total", "Events folded", ["service", "projection"])
FAILED = Counter(
    "rapport_projection_failures_total",
    "Failed catch-up rounds (the units wait at their checkpoints)",
    ["service", "projection"],
)
OWNED = Gauge("rapport_projection_units_owned", "Projection units this instance folds", ["service"])

HEARTBEAT_SECONDS = 2.0
INSTANCE_TTL_SECONDS = 10.0
# After a failed round (the database away): the lease is taken afresh a second later.
ROUND_BACKOFF = Backoff(first=1.0, most=1.0)


@dataclass(frozen=True)
class Unit:
    """A piece of projection work with its own checkpoint: some projections, over the whole
    log or one stream-hash segment of it."""

    name: str
    projections: tuple[Projection, ...]
    segment: Segment | None = None

    @property
    def checkpoint(self) -> str:
        return self.name


def units_of(projections: Sequence[Projection], segments: int) -> list[Unit]:
    """Partitioned projections together in `segments` segments; the others one unit each."""
    partitioned = tuple(p for p in projections if p.partitioned)
    units = []
    if partitioned:
        units = [
            Unit(f"segment:{index}/{segments}", partitioned, Segment(index, segments))
            for index in range(segments)
        ]
    units += [Unit(f"projection:{p.name}", (p,)) for p in projections if not p.partitioned]
    return units


class ProjectionRunner:
    """Keeps a service's projections caught up with its log, sharing the work with the
    service's other instances."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        segments: int = 4,
        batch_size: int = 250,
        poll_interval: float = 0.5,
        gather: float = 0.005,
    ) -> None:
        self._store = store
        self.projections = list(projections)
        self.units = units_of(self.projections, segments)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._gather = gather
        self._wake = store.appended.subscribe()
        self._remote = store.appended_elsewhere.subscribe()
        self._service = store.producer
        self.instance = uuid.uuid4().hex[:12]
        self._owned: dict[str, Unit] = {}
        self._lease: asyncpg.Connection | None = None
        self._beat_at = 0.0
        self._live = 1  # instances folding this service's projections, as last counted

    def projection(self, name: str) -> Projection | None:
        """The projection of that name, if this runner has it."""
        return next((p for p in self.projections if p.name == name), None)

    @property
    def owned(self) -> list[str]:
        """The units this instance folds now."""
        return sorted(self._owned)

    # ------------------------------------------------------------------ folding

    async def catch_up(self, units: Sequence[Unit] | None = None) -> int:
        """Fold every committed event past the checkpoints of `units` (default: all, which
        only a single instance should do); park what a projection cannot fold."""
        chosen = list(self.units if units is None else units)
        folded = 0
        while chosen:
            done, chosen = await self._round(chosen)
            folded += done
        return folded

    async def catch_up_all(self) -> None:
        """Catch every unit up (tests, tools: one instance, errors propagate)."""
        await self.catch_up()

    async def _round(self, units: Sequence[Unit]) -> tuple[int, list[Unit]]:
        """One transaction: the units' checkpoints, one read of the log past the oldest of
        them, one load and one write of the documents of every projection, the checkpoints saved;
        returns the events folded and the units that may have more."""
        unapplied: list[Unapplied] = []
        async with self._store.pool.acquire() as conn, conn.transaction():
            checkpoints = await self._checkpoints(conn, units)
            read = await read_segmented(
                conn,
                min(checkpoints.values()),
                self._batch_size,
                segments=self._segment_count(units),
                only=self._segments_only(units),
            )
            end = read[-1][0].checkpoint if read else None
            work = []
            for projection in self.projections:
                # where each segment of this projection stands (None: a unit of the whole log)
                since = {
                    None if unit.segment is None else unit.segment.index: checkpoints[unit.name]
                    for unit in units
                    if projection in unit.projections
                }
                events = [
                    item
                    for item, segment in read
                    if (cp := since.get(segment, since.get(None))) is not None
                    and item.checkpoint > cp
                ]
                if events:
                    work.append((projection, events))
            if work:
                _, unapplied = await apply_round(conn, work)
                for projection, events in work:
                    APPLIED.labels(self._service, projection.name).inc(len(events))
            for failure in unapplied:
                log.error(
                    "projection_event_parked",
                    service=self._service,
                    projection=failure.projection,
                    event_id=failure.item.event_id,
                    error=failure.error[:500],
                )
                await park(conn, self._service, failure.parking())
            if end is not None:  # every unit has read the log up to `end`
                moved = [u.checkpoint for u in units if checkpoints[u.name] < end]
                await save_checkpoints(conn, moved, end)
        if unapplied:
            await count_open(self._store.pool, self._service)
        more = list(units) if len(read) == self._batch_size else []
        return len(read), more

    def _segment_count(self, units: Sequence[Unit]) -> int:
        counts = {unit.segment.count for unit in units if unit.segment is not None}
        return counts.pop() if counts else 1

    def _segments_only(self, units: Sequence[Unit]) -> list[int] | None:
        """The segments to read, when every unit is a segment (else the whole log)."""
        if any(unit.segment is None for unit in units):
            return None
        return [unit.segment.index for unit in units if unit.segment is not None]

    async def _checkpoints(
        self, conn: asyncpg.Connection, units: Sequence[Unit]
    ) -> dict[str, Checkpoint]:
        """The units' checkpoints, locked till the round commits (in one lock order)."""
        found = await lock_checkpoints(conn, [unit.checkpoint for unit in units])
        for unit in units:
            if unit.checkpoint not in found:
                found[unit.checkpoint] = await self._checkpoint(conn, unit)
        return {unit.name: found[unit.checkpoint] for unit in units}

    async def _checkpoint(self, conn: asyncpg.Connection, unit: Unit) -> Checkpoint:
        """The unit's checkpoint, locked till the round commits; created where it starts."""
        found = await find_checkpoint(conn, unit.checkpoint, lock=True)
        if found is not None:
            return found
        start = await self._start_of(conn, unit)
        await save_checkpoint(conn, unit.checkpoint, start, create=True)
        created = await find_checkpoint(conn, unit.checkpoint, lock=True)
        assert created is not None
        return created

    async def _start_of(self, conn: asyncpg.Connection, unit: Unit) -> Checkpoint:
        """Where a new segment starts: the oldest checkpoint of what folded its projections
        under an earlier layout (one checkpoint per projection, or another segment count).
        Folding again what they hold is harmless: partitioned documents skip what they
        folded. With no earlier layout, the start of the log."""
        if unit.segment is None:
            return START
        layout = f"/{unit.segment.count}"
        earlier = {f"projection:{p.name}" for p in unit.projections}
        found = [
            checkpoint
            for name, checkpoint in (await list_checkpoints(conn)).items()
            if name in earlier or (name.startswith("segment:") and not name.endswith(layout))
        ]
        return min(found, default=START)

    # ------------------------------------------------------------------ sharing the work

    def _lock_key(self, unit: Unit) -> int:
        return zlib.crc32(f"projections:{self._service}:{unit.name}".encode()) - 2**31

    async def _lease_connection(self) -> asyncpg.Connection:
        if self._lease is None or self._lease.is_closed():
            self._owned.clear()
            self._lease = await self._store.pool.acquire()
            await self._store.commits.listen(self._lease)
        return self._lease

    @property
    def others(self) -> bool:
        """Whether other instances fold this service's projections (as of the last beat)."""
        return self._live > 1

    async def rebalance(self) -> list[Unit]:
        """Announce this instance, claim up to its fair share of units, hand back the rest;
        returns the units it owns."""
        lease = await self._lease_connection()
        loop = asyncio.get_running_loop()
        if loop.time() >= self._beat_at:  # announced, and the others counted, every beat
            await announce(lease, self.instance)
            self._beat_at = loop.time() + HEARTBEAT_SECONDS
            self._live = await count_live(lease, INSTANCE_TTL_SECONDS)
        share = math.ceil(len(self.units) / max(self._live, 1))
        for unit in sorted(self._owned.values(), key=lambda u: u.name, reverse=True):
            if len(self._owned) <= share:
                break
            await lease.execute("SELECT pg_advisory_unlock($1)", self._lock_key(unit))
            del self._owned[unit.name]
            log.info("projection_unit_released", service=self._service, unit=unit.name)
        start = zlib.crc32(self.instance.encode()) % len(self.units) if self.units else 0
        for offset in range(len(self.units)):
            if len(self._owned) >= share:
                break
            unit = self.units[(start + offset) % len(self.units)]
            if unit.name in self._owned:
                continue
            if await lease.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key(unit)):
                self._owned[unit.name] = unit
                log.info("projection_unit_claimed", service=self._service, unit=unit.name)
        OWNED.labels(self._service).set(len(self._owned))
        return [unit for unit in self.units if unit.name in self._owned]  # one lock order

    async def _drop_lease(self) -> None:
        lease, self._lease = self._lease, None
        self._owned.clear()
        OWNED.labels(self._service).set(0)
        if lease is not None:
            with contextlib.suppress(Exception):
                await withdraw(lease, self.instance)
            try:  # the pool does not reset sessions: hand back no lock and no listener
                await self._store.commits.unlisten(lease)
                await lease.execute("SELECT pg_advisory_unlock_all()")
                await self._store.pool.release(lease)
            except Exception:
                lease.terminate()

    async def run(self) -> None:
        """Claim units and keep them caught up until cancelled. A failing round (the
        database away) waits and is tried again; the lease is taken afresh."""
        with contextlib.suppress(Exception):
            await count_open(self._store.pool, self._service)
        pacer = ROUND_BACKOFF.pacer()
        try:
            while True:
                self._wake.clear()
                self._remote.clear()
                try:
                    owned = await self.rebalance()
                    if owned:
                        await self.catch_up(owned)
                except Exception as error:
                    for unit in self._owned.values():
                        for projection in unit.projections:
                            FAILED.labels(self._service, projection.name).inc()
                    log.error("projection_round_failed", service=self._service, error=repr(error))
                    await self._drop_lease()
                    await asyncio.sleep(pacer.failed())
                    continue
                pacer.succeeded()
                await self._idle()
        finally:
            await self._drop_lease()

    async def _idle(self) -> None:
        """Until a commit here or elsewhere (or the poll interval), then a moment more, so
        that a busy log is folded in rounds of many events rather than one round each."""
        local = asyncio.ensure_future(self._wake.wait())
        remote = asyncio.ensure_future(self._remote.wait())
        try:
            done, _ = await asyncio.wait(
                {local, remote}, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            local.cancel()
            remote.cancel()
        if done:
            await asyncio.sleep(self._gather)
