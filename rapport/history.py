"""What `rapport audit report` shows, loaded from the database: one engagement's events from
the intake's and the engagement's logs, each stream's hash chain checked, personal fields
revealed where the client's key still exists, and the engagement stream folded event by event
with the engagement's own projections (stage view, trust view, relationship view), so the score
after each event is the one the service showed then. `rapport.report` renders it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from rapport.registry import projections_of
from rapport.secrets import master_key
from shared.model.clock import SystemClock
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection
from shared.reads.audit import ChainVerifier
from shared.security.crypto import Record, decode_master_key, is_token
from shared.storage.bulk import StoredRow
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault

__all__ = [
    "SOURCES",
    "History",
    "HomeworkRecord",
    "Recommendation",
    "Row",
    "ViolationRecord",
    "chain_status",
    "load_history",
]

SOURCES = ("intake", "engagement")


def chain_status(schema: str, envelopes: Sequence[Envelope]) -> str:
    """`intact` or where the hash chain of a stream prefix breaks (the auditors' own check,
    `shared.reads.audit.ChainVerifier`)."""
    verifier = ChainVerifier(schema)
    for envelope in envelopes:
        bad = verifier.feed(StoredRow.of_envelope(envelope))
        if bad is not None:
            return f"broken at version {bad.stream_version}: {bad.reason}"
    return f"intact ({len(envelopes)} events, hashes recomputed)"


@dataclass
class Row:
    """One event as the report shows it."""

    envelope: Envelope
    data: Any
    stage: str | None = None
    score: int | None = None


@dataclass
class ViolationRecord:
    """A boundary violation as the report lists it (personal fields as shown)."""

    violation_id: str
    violated_by: str
    kind: str
    description: Any
    reported_at: datetime
    addressed_at: datetime | None = None
    steps: Any = None


@dataclass
class HomeworkRecord:
    """One homework: assigned, claimed by the client, verified by the coach."""

    homework_id: str
    title: Any
    due_at: str
    claimed_at: datetime | None = None
    outcome: str | None = None
    verified_at: datetime | None = None


@dataclass(frozen=True)
class Recommendation:
    """A supervision recommendation: for whom, why, when."""

    at: datetime
    party: str
    reason: str


@dataclass
class History:
    """What the report is made of."""

    engagement_id: str
    as_of: datetime | None
    rows: list[Row] = field(default_factory=list)
    chains: dict[str, str] = field(default_factory=dict)
    stages: list[tuple[str, datetime]] = field(default_factory=list)
    scores: list[tuple[datetime, int]] = field(default_factory=list)
    factors: list[tuple[datetime, dict[str, int]]] = field(default_factory=list)
    concerns: list[tuple[datetime, str, str]] = field(default_factory=list)  # when, what, factor
    violations: dict[str, ViolationRecord] = field(default_factory=dict)
    homework: dict[str, HomeworkRecord] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)
    stage_view: Document | None = None
    trust_view: Document | None = None
    relationship_view: Document | None = None


async def read_stream(
    database_url: str, schema: str, stream_id: str, until: datetime | None
) -> list[Envelope]:
    """One stream of one service's log, through the kernel's reader."""
    async with asyncpg.create_pool(
        database_url, min_size=1, max_size=1, server_settings={"search_path": schema}
    ) as pool:
        exists = await pool.fetchval("SELECT to_regclass('events') IS NOT NULL")
        if not exists:
            return []
        store = EventStore(pool, schema, SystemClock())
        async with store.snapshot() as conn:
            return [envelope async for envelope in store.read_stream(conn, stream_id, until=until)]


def shown(original: Any, revealed: Any, missing: str) -> Any:
    """The revealed tree, with each personal value that could not be opened marked `missing`
    (why: erased, unreadable, or no master key)."""
    if is_token(original):
        return missing if revealed is None else revealed
    if isinstance(original, dict):
        return {
            name: shown(value, revealed.get(name) if isinstance(revealed, dict) else None, missing)
            for name, value in original.items()
        }
    if isinstance(original, list):
        others = revealed if isinstance(revealed, list) else [None] * len(original)
        return [shown(value, other, missing) for value, other in zip(original, others, strict=True)]
    return original


def client_of(envelopes: Sequence[Envelope]) -> str | None:
    """The client an engagement's (or intake's) stream belongs to, as its first event names."""
    for envelope in envelopes:
        client_id = envelope.data.get("client_id")
        if isinstance(client_id, str):
            return client_id
    return None


async def revealed_data(vault: KeyVault | None, record: Record | None, envelope: Envelope) -> Any:
    """An event's data as the report shows it: personal values opened as the record's."""
    if vault is None or record is None:
        return shown(envelope.data, None, "encrypted (no master key)")
    revealed = await vault.reveal(envelope.data, record)
    return shown(envelope.data, revealed.tree, "erased" if revealed.erased else "unreadable")


def by_name(projections: Sequence[Projection], name: str) -> Projection | None:
    return next((projection for projection in projections if projection.name == name), None)


def folded(projection: Projection | None, document: Document | None, envelope: Envelope) -> Any:
    """One more event folded into a view (the view as it was if the event is not its own)."""
    if projection is None or projection.key(envelope) is None:
        return document
    return projection.apply(document, envelope) or document


def note_finding(history: History, envelope: Envelope, shown_data: Any) -> None:
    """Keep what the findings list from one engagement event: its violations, homework and
    supervision recommendations (personal fields as the report shows them)."""
    data, at = envelope.data, envelope.occurred
    match envelope.event_type:
        case "BoundaryViolated":
            history.violations[data["violation_id"]] = ViolationRecord(
                data["violation_id"],
                data["violated_by"],
                data["kind"],
                shown_data.get("description"),
                at,
            )
        case "BoundaryViolationAddressed" if data["violation_id"] in history.violations:
            violation = history.violations[data["violation_id"]]
            violation.addressed_at, violation.steps = at, shown_data.get("steps")
        case "HomeworkAssigned":
            history.homework[data["homework_id"]] = HomeworkRecord(
                data["homework_id"], shown_data.get("title"), str(data["due_at"])
            )
        case "HomeworkClaimed" if data["homework_id"] in history.homework:
            history.homework[data["homework_id"]].claimed_at = at
        case "HomeworkVerified" if data["homework_id"] in history.homework:
            item = history.homework[data["homework_id"]]
            item.outcome, item.verified_at = str(data["outcome"]), at
        case "SupervisionRecommended":
            history.recommendations.append(
                Recommendation(at, str(data["party"]), str(data["reason"]))
            )


def fold_history(history: History, engagement: Sequence[Envelope]) -> None:
    """Fold the engagement stream with its own projections, noting stage and score after each,
    the client's six ratings after each client check-in, and the findings."""
    projections = projections_of("engagement")
    stage_view, trust_view = by_name(projections, "stage_view"), by_name(projections, "trust_view")
    relationship_view = by_name(projections, "relationship_view")
    rows = {row.envelope.event_id: row for row in history.rows}
    for envelope in engagement:
        history.stage_view = folded(stage_view, history.stage_view, envelope)
        history.trust_view = folded(trust_view, history.trust_view, envelope)
        history.relationship_view = folded(relationship_view, history.relationship_view, envelope)
        kind, data = envelope.event_type, envelope.data
        if kind == "RelationshipCheckInRecorded" and data.get("rater") == "client":
            latest = (history.relationship_view or {}).get("latest", {}).get("client")
            if latest:
                history.factors.append((envelope.occurred, dict(latest)))
        elif kind in ("RelationshipConcernRaised", "RelationshipConcernResolved"):
            what = "raised" if kind.endswith("Raised") else "resolved"
            history.concerns.append((envelope.occurred, what, str(data.get("factor"))))
        row = rows[envelope.event_id]
        note_finding(history, envelope, row.data)
        moment = envelope.occurred
        if history.stage_view is not None:
            row.stage = str(history.stage_view["stage"])
            if not history.stages or history.stages[-1][0] != row.stage:
                history.stages.append((row.stage, moment))
        if history.trust_view is not None:
            row.score = int(history.trust_view["score"])
            history.scores.append((moment, row.score))


async def load_history(
    database_url: str, engagement_id: str, as_of: datetime | None, data_dir: Path
) -> History | None:
    streams = {
        schema: await read_stream(database_url, schema, engagement_id, as_of) for schema in SOURCES
    }
    if not any(streams.values()):
        return None
    history = History(engagement_id, as_of)
    key = master_key(data_dir)
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
        vault = KeyVault(pool, decode_master_key(key)) if key else None
        client_id = client_of([e for envelopes in streams.values() for e in envelopes])
        record = Record(client_id, engagement_id) if client_id else None
        for schema, envelopes in streams.items():
            history.chains[schema] = chain_status(schema, envelopes)
            for envelope in envelopes:
                data = await revealed_data(vault, record, envelope)
                history.rows.append(Row(envelope, data))
    history.rows.sort(key=lambda row: (row.envelope.occurred, SOURCES.index(row.envelope.producer)))
    fold_history(history, streams["engagement"])
    return history
