"""`rapport audit report`: one engagement's history as a self-contained HTML file.

The engagement stream is folded event by event with the engagement's own projections (stage
view, trust view), so the score after each event is the one the service showed then. Personal
fields are decrypted where the client's key still exists and shown as "erased" where it was
destroyed. The page has inline CSS and an inline SVG chart: it needs no network and no script.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from rapport.audit import projections_of
from rapport.report_template import PAGE
from shared.clock import SystemClock
from shared.crypto import KeyVault, decode_master_key, is_token
from shared.envelope import GENESIS_HASH, Envelope, format_time
from shared.eventstore import EventStore
from shared.projections import Document, Projection

SOURCES = ("intake", "engagement")
STAGE_COLOURS = {
    "commitment": "#e0ecff",
    "working_the_plan": "#e3f6e8",
    "transformation": "#fff3d6",
    "graduation": "#f1e6ff",
    "graduated": "#dff7f5",
    "terminated": "#fde2e2",
}


@dataclass
class Row:
    """One event as the report shows it."""

    envelope: Envelope
    data: Any
    stage: str | None = None
    score: int | None = None


@dataclass
class History:
    """What the report is made of."""

    engagement_id: str
    as_of: datetime | None
    rows: list[Row] = field(default_factory=list)
    chains: dict[str, str] = field(default_factory=dict)
    stages: list[tuple[str, datetime]] = field(default_factory=list)
    scores: list[tuple[datetime, int]] = field(default_factory=list)
    stage_view: Document | None = None
    trust_view: Document | None = None


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


def chain_status(envelopes: Sequence[Envelope]) -> str:
    """`intact` or where the hash chain of a stream prefix breaks."""
    previous = GENESIS_HASH
    for version, envelope in enumerate(envelopes, start=1):
        if envelope.stream_version != version:
            return f"broken: version {envelope.stream_version} where {version} was expected"
        if not envelope.is_intact():
            return f"broken: the hash of version {version} does not recompute"
        if envelope.prev_hash != previous:
            return f"broken: version {version} does not link to version {version - 1}"
        previous = envelope.hash
    return f"intact ({len(envelopes)} events, hashes recomputed)"


def shown(original: Any, revealed: Any, readable: bool) -> Any:
    """The revealed tree, with each personal value whose key is gone marked as such."""
    if is_token(original):
        if revealed is not None:
            return revealed
        return "erased" if readable else "encrypted (no master key)"
    if isinstance(original, dict):
        return {
            name: shown(value, revealed.get(name) if isinstance(revealed, dict) else None, readable)
            for name, value in original.items()
        }
    if isinstance(original, list):
        others = revealed if isinstance(revealed, list) else [None] * len(original)
        return [
            shown(value, other, readable) for value, other in zip(original, others, strict=True)
        ]
    return original


def master_key(data_dir: Path) -> str | None:
    """The master key from the environment or `rapport dev`'s secrets; never created here."""
    key = os.environ.get("RAPPORT_MASTER_KEY")
    path = data_dir / "secrets.json"
    if not key and path.exists():
        key = json.loads(path.read_text()).get("master_key")
    return key or None


def by_name(projections: Sequence[Projection], name: str) -> Projection | None:
    return next((projection for projection in projections if projection.name == name), None)


def fold_history(history: History, engagement: Sequence[Envelope]) -> None:
    """Fold the engagement stream with its own projections, noting stage and score after each."""
    projections = projections_of("engagement")
    stage_view, trust_view = by_name(projections, "stage_view"), by_name(projections, "trust_view")
    rows = {row.envelope.event_id: row for row in history.rows}
    for envelope in engagement:
        if stage_view is not None and stage_view.key(envelope) is not None:
            history.stage_view = (
                stage_view.apply(history.stage_view, envelope) or history.stage_view
            )
        if trust_view is not None and trust_view.key(envelope) is not None:
            history.trust_view = (
                trust_view.apply(history.trust_view, envelope) or history.trust_view
            )
        row = rows[envelope.event_id]
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
        for schema, envelopes in streams.items():
            history.chains[schema] = chain_status(envelopes)
            for envelope in envelopes:
                revealed = (await vault.reveal(envelope.data))[0] if vault else None
                data = shown(envelope.data, revealed, vault is not None)
                history.rows.append(Row(envelope, data))
    history.rows.sort(key=lambda row: (row.envelope.occurred, SOURCES.index(row.envelope.producer)))
    fold_history(history, streams["engagement"])
    return history


# ----------------------------------------------------------------------------- rendering

WIDTH, HEIGHT = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 48, 40
LABEL_ROWS, LABEL_WIDTH = 3, 7 * 16  # stage labels too close to each other stack upwards


def chart(history: History) -> str:
    """The trust score over time as an inline SVG step line, stage changes marked."""
    if not history.scores:
        return '<p class="muted">No trust score yet: the engagement has not opened.</p>'
    start = history.scores[0][0]
    end = max(history.as_of or history.scores[-1][0], history.scores[-1][0])
    span = max((end - start).total_seconds(), 1.0)
    end = start + timedelta(seconds=span * 1.04)
    span *= 1.04
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return round(LEFT + inner_w * (moment - start).total_seconds() / span, 2)

    def y(score: float) -> float:
        return round(TOP + inner_h * (1 - score / 100), 2)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-title"'
        ' class="chart">',
        '<title id="chart-title">Trust score over time, stage changes marked</title>',
    ]
    for index, (stage, entered) in enumerate(history.stages):
        left = x(max(entered, start))
        right = x(history.stages[index + 1][1]) if index + 1 < len(history.stages) else x(end)
        colour = STAGE_COLOURS.get(stage, "#eeeeee")
        parts.append(
            f'<rect class="stage-band" x="{left}" y="{TOP}" width="{max(right - left, 0.5)}"'
            f' height="{inner_h}" fill="{colour}"><title>{html.escape(stage)}</title></rect>'
        )
    for level in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level)}" y2="{y(level)}"'
            ' stroke="#c8ccd2" stroke-width="1"/>'
            f'<text x="{LEFT - 8}" y="{y(level) + 4}" text-anchor="end" class="axis">{level}</text>'
        )
    row_ends = [float("-inf")] * LABEL_ROWS
    for index, (stage, entered) in enumerate(history.stages):
        if index == 0:
            continue
        position = x(entered)
        row = next((r for r, end_x in enumerate(row_ends) if position >= end_x), LABEL_ROWS - 1)
        row_ends[row] = position + LABEL_WIDTH
        fits_right = position + LABEL_WIDTH < WIDTH
        anchor = "start" if fits_right else "end"
        label_x = position + 4 if fits_right else position - 4
        parts.append(
            f'<line class="stage-change" x1="{position}" x2="{position}" y1="{TOP - 14 * row}"'
            f' y2="{TOP + inner_h}" stroke="#7c3aed" stroke-width="1.5" stroke-dasharray="5 4"/>'
            f'<text x="{label_x}" y="{TOP - 8 - 14 * row}" text-anchor="{anchor}"'
            f' class="stage-label">{html.escape(stage.replace("_", " "))}</text>'
        )
    points: list[str] = []
    previous: float | None = None
    for moment, score in history.scores:
        if previous is not None:
            points.append(f"{x(moment)},{previous}")
        previous = y(score)
        points.append(f"{x(moment)},{previous}")
    points.append(f"{x(end)},{previous}")
    parts.append(
        f'<polyline class="trust-line" points="{" ".join(points)}" fill="none"'
        ' stroke="#2563eb" stroke-width="3" stroke-linejoin="round"/>'
    )
    for moment, score in history.scores:
        parts.append(
            f'<circle cx="{x(moment)}" cy="{y(score)}" r="4" fill="#2563eb">'
            f"<title>{html.escape(format_time(moment))}: {score}</title></circle>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 12}" class="axis">{html.escape(label(start))}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end" class="axis">'
        f"{html.escape(label(end))}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def label(moment: datetime) -> str:
    return format_time(moment)[:19].replace("T", " ") + " UTC"


def stage_table(history: History) -> str:
    if not history.stages:
        return '<p class="muted">No stages yet: the engagement has not opened.</p>'
    rows = []
    for index, (stage, entered) in enumerate(history.stages):
        left = history.stages[index + 1][1] if index + 1 < len(history.stages) else None
        rows.append(
            f'<tr><td><span class="swatch" style="background:{STAGE_COLOURS.get(stage, "#eee")}">'
            f"</span>{html.escape(stage)}</td><td>{html.escape(label(entered))}</td>"
            f"<td>{html.escape(label(left)) if left else '—'}</td></tr>"
        )
    return (
        "<table><thead><tr><th>stage</th><th>entered</th><th>left</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def event_table(history: History) -> str:
    rows = []
    for number, row in enumerate(history.rows, start=1):
        envelope = row.envelope
        data = html.escape(json.dumps(row.data, indent=1, ensure_ascii=False, sort_keys=True))
        rows.append(
            f'<tr class="event"><td>{number}</td><td>{html.escape(envelope.producer)}</td>'
            f"<td>{envelope.stream_version}</td><td>{html.escape(label(envelope.occurred))}</td>"
            f'<td class="type">{html.escape(envelope.event_type)}'
            f'<br><span class="muted">v{envelope.schema_version}</span></td>'
            f"<td>{html.escape(envelope.actor.role)}:{html.escape(envelope.actor.id)}</td>"
            f"<td><pre>{data}</pre></td>"
            f"<td>{html.escape(row.stage or '')}</td>"
            f"<td>{'' if row.score is None else row.score}</td>"
            f'<td class="hash" title="{envelope.hash}">{envelope.hash[:12]}…</td></tr>'
        )
    return "".join(rows)


def render(history: History) -> str:
    """The whole page."""
    stage = history.stage_view["stage"] if history.stage_view else "not opened"
    score = history.trust_view["score"] if history.trust_view else "—"
    chains = "".join(
        f"<li><b>{html.escape(schema)}</b>: {html.escape(status)}</li>"
        for schema, status in history.chains.items()
    )
    return PAGE.substitute(
        engagement_id=html.escape(history.engagement_id),
        as_of=html.escape(format_time(history.as_of) if history.as_of else "now (the whole log)"),
        stage=html.escape(str(stage)),
        score=html.escape(str(score)),
        events=len(history.rows),
        chains=chains,
        chart=chart(history),
        stages=stage_table(history),
        rows=event_table(history),
    )


async def build_report(
    database_url: str, engagement_id: str, as_of: datetime | None, data_dir: Path
) -> str | None:
    """The report's HTML; None when neither intake nor engagement knows the id."""
    history = await load_history(database_url, engagement_id, as_of, data_dir)
    return None if history is None else render(history)
