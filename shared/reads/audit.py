"""Auditing a service's event store (contract section 6): chain verification and replay.

`ChainVerifier` is the pure core: fed a service's stored rows in `(stream_id, stream_version)`
order, it recomputes every hash by the contract's rule and checks the `prev_hash` links, the
gapless versions and that the row's columns agree with its envelope. It keeps only the current
stream's head, so `verify_events`, which feeds it from a server-side cursor, runs in constant
memory however long the log is.

`replay` folds a service's whole log again, with its projections, into a fresh schema's
`documents` table and digests each projection there (`shared.model.projections.rebuild` / `digest`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError

from shared.model.envelope import GENESIS_HASH, Envelope, compute_hash
from shared.model.projections import Projection
from shared.reads.folding import Unapplied
from shared.reads.rebuild import rebuild_into
from shared.storage.bulk import StoredRow, stored_rows
from shared.storage.db import checked_schema
from shared.storage.documents import create_documents_like, digest

__all__ = [
    "BadEvent",
    "ChainVerifier",
    "ProjectionDigest",
    "ReplayResult",
    "VerifyResult",
    "digests_of",
    "live_digests",
    "replay",
    "verify_events",
]


@dataclass(frozen=True)
class BadEvent:
    """The first event that breaks the chain, and why."""

    service: str
    stream_id: str
    stream_version: int
    event_id: str
    reason: str

    def __str__(self) -> str:
        return (
            f"service={self.service} stream={self.stream_id} version={self.stream_version}"
            f" event_id={self.event_id} reason={self.reason}"
        )


@dataclass(frozen=True)
class VerifyResult:
    """What a walk over one service's log found."""

    service: str
    streams: int
    events: int
    seconds: float
    bad: BadEvent | None

    @property
    def intact(self) -> bool:
        return self.bad is None


class ChainVerifier:
    """Checks rows fed in `(stream_id, stream_version)` order; remembers one stream head."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.streams = 0
        self.events = 0
        self._stream: str | None = None
        self._version = 0
        self._hash = GENESIS_HASH

    def feed(self, row: StoredRow) -> BadEvent | None:
        """Check the next row; a BadEvent when it breaks the log, else None."""
        if row.stream_id != self._stream:
            self._stream, self._version, self._hash = row.stream_id, 0, GENESIS_HASH
            self.streams += 1
        self.events += 1
        reason = self._reason(row)
        if reason is not None:
            return BadEvent(self.service, row.stream_id, row.stream_version, row.event_id, reason)
        self._version, self._hash = row.stream_version, row.hash
        return None

    def _reason(self, row: StoredRow) -> str | None:
        expected = self._version + 1
        if row.stream_version != expected:
            return f"version gap: expected version {expected}, found {row.stream_version}"
        try:
            body: Any = json.loads(row.envelope)
        except ValueError as error:
            return f"envelope is not valid JSON ({error})"
        if not isinstance(body, dict):
            return "envelope is not a JSON object"
        try:
            envelope = Envelope.model_validate(body)
        except ValidationError as error:
            return f"envelope does not have the contract's shape ({error.error_count()} errors)"
        unhashed = {name: value for name, value in body.items() if name != "hash"}
        recomputed = compute_hash(unhashed)
        if recomputed != envelope.hash:
            return (
                f"hash mismatch: stored {envelope.hash}, recomputed {recomputed} from the"
                " envelope's content"
            )
        if envelope.prev_hash != self._hash:
            return (
                f"broken link: prev_hash {envelope.prev_hash} is not the hash of version"
                f" {self._version} ({self._hash})"
            )
        for column, stored, enveloped in (
            ("stream_id", row.stream_id, envelope.stream_id),
            ("stream_version", row.stream_version, envelope.stream_version),
            ("event_id", row.event_id, envelope.event_id),
            ("event_type", row.event_type, envelope.event_type),
            ("schema_version", row.schema_version, envelope.schema_version),
            ("hash", row.hash, envelope.hash),
        ):
            if stored != enveloped:
                return f"column {column} ({stored}) disagrees with the envelope ({enveloped})"
        return None


async def verify_events(
    conn: asyncpg.Connection,
    schema: str,
    *,
    service: str | None = None,
    prefetch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Walk `<schema>.events` with a server-side cursor and stop at the first bad event."""
    verifier = ChainVerifier(service or schema)
    started = time.perf_counter()
    bad: BadEvent | None = None
    async with (
        conn.transaction(isolation="repeatable_read", readonly=True),
        aclosing(stored_rows(conn, schema, prefetch=prefetch)) as rows,
    ):
        async for row in rows:
            bad = verifier.feed(row)
            if progress is not None:
                progress(1)
            if bad is not None:
                break
    return VerifyResult(
        service=verifier.service,
        streams=verifier.streams,
        events=verifier.events,
        seconds=time.perf_counter() - started,
        bad=bad,
    )


@dataclass(frozen=True)
class ProjectionDigest:
    """A projection's documents summed up: how many, and the SHA-256 over them in id order."""

    projection: str
    documents: int
    digest: str


@dataclass(frozen=True)
class ReplayResult:
    service: str
    schema: str
    events: int
    digests: list[ProjectionDigest]
    unapplied: list[Unapplied] = field(default_factory=list)


async def digests_of(
    conn: asyncpg.Connection, projections: Sequence[Projection]
) -> list[ProjectionDigest]:
    """The digest of each projection in the `documents` table the connection resolves to."""
    found = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for projection in projections:
            sha, count = await digest(conn, projection.name)
            found.append(ProjectionDigest(projection.name, count, sha))
    return found


async def live_digests(
    database_url: str, schema: str, projections: Sequence[Projection]
) -> list[ProjectionDigest]:
    """The digests of the projections the running service keeps in `<schema>.documents`."""
    conn = await asyncpg.connect(
        database_url, server_settings={"search_path": checked_schema(schema)}
    )
    try:
        return await digests_of(conn, projections)
    finally:
        await conn.close()


async def replay(
    database_url: str,
    schema: str,
    projections: Sequence[Projection],
    *,
    service: str | None = None,
    keep: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Fold `<schema>.events` with `projections` into a fresh `replay_<schema>_<random>` schema.

    The fresh schema gets a `documents` table like the service's own, which
    `shared.reads.rebuild.rebuild_into` fills (in passes over stream-hash segments, in `workers`
    parallel processes, by default the cores); the digests are taken there. The schema is
    dropped afterwards unless `keep`.
    """
    source = checked_schema(schema)
    target = f"replay_{source}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE SCHEMA {target}")
        await create_documents_like(admin, target, source)
        folded = await rebuild_into(
            database_url, source, target, projections, workers=workers, progress=progress
        )
        events, unapplied = folded.events, folded.unapplied
        conn = await asyncpg.connect(database_url, server_settings={"search_path": target})
        try:
            digests = await digests_of(conn, projections)
        finally:
            await conn.close()
    finally:
        if not keep:
            await admin.execute(f"DROP SCHEMA IF EXISTS {target} CASCADE")
        await admin.close()
    return ReplayResult(service or source, target, events, digests, unapplied)
