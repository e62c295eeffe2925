"""Rebuilding projections from the whole log, fast and in bounded memory.

The log is read once per pass in commit-safe order, in large pages, and folded in memory;
the documents of a pass are written with one COPY at its end. Partitioned projections are
folded in stream-hash segments, each segment a pass of its own, so a pass holds only its
segment's documents (choose enough segments for memory) and the passes run in parallel
processes; projections that span streams get one pass over the whole log. Documents of
different passes never meet, so every write is an insert.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from shared.model.envelope import Envelope
from shared.model.events import EventRegistry
from shared.model.projections import Document, Projection
from shared.reads.folding import Unapplied
from shared.storage.bulk import count_streams
from shared.storage.documents import copy_documents
from shared.storage.eventstore import Segment, events_at, scan_log

__all__ = ["PassResult", "fold_pass", "plan_passes", "rebuild_into"]

PAGE = 5000
STREAMS_PER_SEGMENT = 20_000  # documents a pass keeps in memory, per partitioned projection
SEGMENTS_PER_WORKER = 4  # passes per worker: the last to finish waits for less


@dataclass
class PassResult:
    """What one pass folded: events read, documents written, events it could not fold."""

    events: int = 0
    documents: int = 0
    unapplied: list[Unapplied] = field(default_factory=list)


@dataclass(frozen=True)
class Pass:
    """Some projections over the whole log or one segment of it."""

    projections: tuple[Projection, ...]
    segment: Segment | None


def plan_passes(projections: Sequence[Projection], streams: int, workers: int) -> list[Pass]:
    """One whole-log pass for the projections that span streams (reading only their event
    types, when they name them), first: it cannot be split, so it starts while the rest is
    shared out. Then segments for the partitioned projections: each pass holds at most
    `STREAMS_PER_SEGMENT` streams' documents, and with the whole-log pass there are
    `SEGMENTS_PER_WORKER` passes per worker (the whole-log pass taking one segment's place),
    small enough that the workers finish close together."""
    partitioned = tuple(p for p in projections if p.partitioned)
    spanning = tuple(p for p in projections if not p.partitioned)
    passes: list[Pass] = []
    if spanning:
        passes.append(Pass(spanning, None))
    if partitioned:
        wanted = SEGMENTS_PER_WORKER * workers - len(passes) if workers > 1 else 1
        count = max(wanted, math.ceil(streams / STREAMS_PER_SEGMENT))
        if count == 1:
            passes.append(Pass(partitioned, None))
        else:
            passes += [Pass(partitioned, Segment(i, count)) for i in range(count)]
    return passes


def _types_of(projections: Sequence[Projection]) -> list[str] | None:
    """The event types these projections can touch, if every one of them names its own."""
    named = [p.event_types for p in projections]
    if any(types is None for types in named):
        return None
    return sorted({t for types in named if types is not None for t in types})


async def fold_pass(
    database_url: str,
    source: str,
    target: str,
    projections: Sequence[Projection],
    segment: Segment | None,
    progress: Callable[[int], None] | None = None,
) -> PassResult:
    """Fold `source`'s log (one segment of it, or all) with `projections` in memory, then COPY
    the documents into `target.documents`."""
    result = PassResult()
    documents: dict[tuple[str, str], Document] = {}
    versions: dict[tuple[str, str], int] = {}
    failed: list[tuple[int, str, str]] = []  # (position, projection, why): rare, looked up last
    conn = await asyncpg.connect(database_url, server_settings={"search_path": source})
    collecting = gc.isenabled()
    gc.disable()  # a pass allocates much and frees it in order: no cycles to collect
    try:
        # One cursor over a read-only snapshot (no transaction id: it holds back no reader's
        # horizon), in commit-safe order: far cheaper than restarting a scan for every page.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await scan_log(conn, segment=segment, event_types=_types_of(projections))
            folds = _folds(projections)
            # PostgreSQL reads the next page while this one is folded.
            next_page = asyncio.ensure_future(cursor.fetch(PAGE))
            try:
                while page := await next_page:
                    next_page = asyncio.ensure_future(cursor.fetch(PAGE))
                    await asyncio.sleep(0)  # lets the request go out
                    for position, raw in page:
                        _fold(position, raw, folds, documents, versions, failed)
                    result.events += len(page)
                    if progress is not None:
                        progress(len(page))
            finally:
                next_page.cancel()  # a pass cut short leaves no fetch behind
        if failed:
            result.unapplied = await _unapplied(conn, failed)
        result.documents = await copy_documents(
            conn, target, documents, versions, datetime.now(UTC)
        )
    finally:
        if collecting:
            gc.enable()
        await conn.close()
    return result


@dataclass(frozen=True)
class _Fold:
    name: str
    key: Callable[[Envelope], str | None]
    fold: Callable[[Document | None, Envelope], Document | None]
    registry: EventRegistry | None


def _folds(projections: Sequence[Projection]) -> list[_Fold]:
    return [_Fold(p.name, p.key, p.fold, p.registry) for p in projections]


def _fold(
    position: int,
    raw: str,
    folds: Sequence[_Fold],
    documents: dict[tuple[str, str], Document],
    versions: dict[tuple[str, str], int],
    failed: list[tuple[int, str, str]],
) -> None:
    """Fold one stored envelope with every projection (as `Projection.apply` does, upcasting
    it once for the projections that share a registry); failures are noted, not raised."""
    try:
        envelope = Envelope.model_validate_json(raw)
    except Exception as error:
        failed += [(position, f.name, f"{type(error).__name__}: {error}") for f in folds]
        return
    version = envelope.stream_version
    registry: EventRegistry | None = None
    current = envelope
    for each in folds:
        try:
            key = each.key(envelope)
            if key is None:
                continue
            if each.registry is not registry:
                registry = each.registry
                current = envelope if registry is None else registry.upcast_envelope(envelope)
            slot = (each.name, key)
            document = each.fold(documents.get(slot), current)
        except Exception as error:
            failed.append((position, each.name, f"{type(error).__name__}: {error}"))
            continue
        if document is not None:
            documents[slot] = document
            versions[slot] = version


async def _unapplied(
    conn: asyncpg.Connection, failed: list[tuple[int, str, str]]
) -> list[Unapplied]:
    """The events that did not fold, as stored, with the projection and the reason."""
    found = await events_at(conn, sorted({position for position, _, _ in failed}))
    stored = {event.position: event for event in found}
    return [Unapplied(name, stored[position], why) for position, name, why in failed]


def _run_pass(database_url: str, source: str, target: str, plan: Pass) -> PassResult:
    """A pass in a worker process (forked from one that may be running an event loop)."""
    asyncio.events._set_running_loop(None)
    return asyncio.run(fold_pass(database_url, source, target, plan.projections, plan.segment))


async def rebuild_into(
    database_url: str,
    source: str,
    target: str,
    projections: Sequence[Projection],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PassResult:
    """Fold `source.events` with `projections` into the empty `target.documents`, in passes
    spread over `workers` processes (default: the cores). Returns the totals."""
    conn = await asyncpg.connect(database_url)
    try:
        streams = await count_streams(conn, source)
    finally:
        await conn.close()
    workers = workers or multiprocessing.cpu_count()
    passes = plan_passes(projections, streams, workers)
    workers = min(len(passes), workers)
    total = PassResult()
    if workers <= 1:
        for plan in passes:
            counted = _counts_the_log(plan, passes)
            done = await fold_pass(
                database_url,
                source,
                target,
                plan.projections,
                plan.segment,
                progress if counted else None,
            )
            _add(total, done, counted, progress=None)
        return total
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(pool, _run_pass, database_url, source, target, plan)
            for plan in passes
        ]
        for plan, future in zip(passes, futures, strict=True):
            _add(total, await future, _counts_the_log(plan, passes), progress)
    return total


def _counts_the_log(plan: Pass, passes: Sequence[Pass]) -> bool:
    """Whether a pass's events count as the log's: the passes of partitioned projections
    split the log between them; the whole-log pass counts only when there are none."""
    if any(p.partitioned for p in plan.projections):
        return True
    return not any(p.partitioned for other in passes for p in other.projections)


def _add(
    total: PassResult,
    done: PassResult,
    counted: bool,
    progress: Callable[[int], None] | None,
) -> None:
    """Sum a pass in (its events only when they are `counted` as the log's)."""
    if counted:
        total.events += done.events
        if progress is not None:
            progress(done.events)
    total.documents += done.documents
    total.unapplied += done.unapplied
