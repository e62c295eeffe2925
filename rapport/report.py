"""`rapport audit report`: one engagement's history as a self-contained HTML file.

`rapport.history` loads what the page shows; this module renders it. Personal fields are shown
as "erased" where the client's key was destroyed. The page has inline CSS and inline SVG charts
(the trust score, and below it on the same time axis the client's six factors): it needs no
network and no script.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rapport.history import History, load_history
from rapport.report_template import PAGE
from services.engagement.domain.events import FACTORS
from shared.model.envelope import format_time

__all__ = ["FACTOR_COLOURS", "STAGE_COLOURS", "build_report", "render"]

FACTOR_COLOURS = {
    "empathy": "#db2777",
    "active_listening": "#ea580c",
    "non_judgment": "#16a34a",
    "confidentiality": "#0891b2",
    "collaboration": "#a16207",
    "boundaries": "#6d28d9",
}
STAGE_COLOURS = {
    "commitment": "#e0ecff",
    "working_the_plan": "#e3f6e8",
    "transformation": "#fff3d6",
    "graduation": "#f1e6ff",
    "graduated": "#dff7f5",
    "terminated": "#fde2e2",
}


# ----------------------------------------------------------------------------- rendering

WIDTH, HEIGHT = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 48, 40
LABEL_ROWS, LABEL_WIDTH = 3, 7 * 16  # stage labels too close to each other stack upwards
FACTOR_HEIGHT = 300
LOWEST, HIGHEST, LOW = 1, 5, 2  # ratings; 2 or lower is low (contract section 7)
FACTOR_OFFSET = 2.5  # px between the lines of factors rated alike, so that each stays visible


@dataclass(frozen=True)
class TimeAxis:
    """The time scale both charts share, from the engagement's opening to the report's end."""

    start: datetime
    end: datetime

    @property
    def span(self) -> float:
        return (self.end - self.start).total_seconds()

    def x(self, moment: datetime) -> float:
        inner_w = WIDTH - LEFT - RIGHT
        return round(LEFT + inner_w * (moment - self.start).total_seconds() / self.span, 2)


def time_axis(history: History) -> TimeAxis | None:
    if not history.scores:
        return None
    start = history.scores[0][0]
    end = max(history.as_of or history.scores[-1][0], history.scores[-1][0])
    span = max((end - start).total_seconds(), 1.0)
    return TimeAxis(start, start + timedelta(seconds=span * 1.04))


def stage_bands(history: History, axis: TimeAxis, height: int, css: str) -> list[str]:
    """The stages as shaded bands behind a chart `height` pixels tall."""
    inner_h = height - TOP - BOTTOM
    bands = []
    for index, (stage, entered) in enumerate(history.stages):
        left = axis.x(max(entered, axis.start))
        following = history.stages[index + 1][1] if index + 1 < len(history.stages) else None
        right = axis.x(following) if following else axis.x(axis.end)
        colour = STAGE_COLOURS.get(stage, "#eeeeee")
        bands.append(
            f'<rect class="{css}" x="{left}" y="{TOP}" width="{max(right - left, 0.5)}"'
            f' height="{inner_h}" fill="{colour}"><title>{html.escape(stage)}</title></rect>'
        )
    return bands


def time_labels(axis: TimeAxis, height: int) -> str:
    return (
        f'<text x="{LEFT}" y="{height - 12}" class="axis">{html.escape(label(axis.start))}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{height - 12}" text-anchor="end" class="axis">'
        f"{html.escape(label(axis.end))}</text>"
    )


def step_points(
    axis: TimeAxis, values: Sequence[tuple[datetime, float]], y: Callable[[float], float]
) -> str:
    """A step line through the values, held until the next one and to the end of the axis."""
    points: list[str] = []
    previous: float | None = None
    for moment, value in values:
        if previous is not None:
            points.append(f"{axis.x(moment)},{previous}")
        previous = y(value)
        points.append(f"{axis.x(moment)},{previous}")
    points.append(f"{axis.x(axis.end)},{previous}")
    return " ".join(points)


def chart(history: History) -> str:
    """The trust score over time as an inline SVG step line, stage changes marked."""
    axis = time_axis(history)
    if axis is None:
        return '<p class="muted">No trust score yet: the engagement has not opened.</p>'
    inner_h = HEIGHT - TOP - BOTTOM

    def y(score: float) -> float:
        return round(TOP + inner_h * (1 - score / 100), 2)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-title"'
        ' class="chart">',
        '<title id="chart-title">Trust score over time, stage changes marked</title>',
        *stage_bands(history, axis, HEIGHT, "stage-band"),
    ]
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
        position = axis.x(entered)
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
    parts.append(
        f'<polyline class="trust-line" points="{step_points(axis, history.scores, y)}"'
        ' fill="none" stroke="#2563eb" stroke-width="3" stroke-linejoin="round"/>'
    )
    for moment, score in history.scores:
        parts.append(
            f'<circle cx="{axis.x(moment)}" cy="{y(score)}" r="4" fill="#2563eb">'
            f"<title>{html.escape(format_time(moment))}: {score}</title></circle>"
        )
    parts.append(time_labels(axis, HEIGHT))
    parts.append("</svg>")
    return "".join(parts)


def factors_chart(history: History) -> str:
    """The client's six ratings (1..5) after each client check-in, one step line a factor, on
    the trust chart's time axis; the low zone (2 or lower) shaded, concerns marked."""
    axis = time_axis(history)
    if axis is None or not history.factors:
        return '<p class="muted">No client check-in yet: no ratings of the relationship.</p>'
    inner_h = FACTOR_HEIGHT - TOP - BOTTOM

    def y(rating: float) -> float:
        return round(TOP + inner_h * (HIGHEST + 0.5 - rating) / (HIGHEST - LOWEST + 1), 2)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {FACTOR_HEIGHT}" width="{WIDTH}" height="{FACTOR_HEIGHT}"'
        ' role="img" aria-labelledby="factors-title" class="chart factors">',
        '<title id="factors-title">The client\'s six factors of the relationship over time</title>',
        *stage_bands(history, axis, FACTOR_HEIGHT, "factor-stage-band"),
        f'<rect class="low-zone" x="{LEFT}" y="{y(LOW + 0.5)}" width="{WIDTH - LEFT - RIGHT}"'
        f' height="{round(y(LOWEST - 0.5) - y(LOW + 0.5), 2)}" fill="#fca5a5"'
        ' fill-opacity="0.3"><title>low: 2 or less</title></rect>',
    ]
    for level in range(LOWEST, HIGHEST + 1):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level)}" y2="{y(level)}"'
            ' stroke="#c8ccd2" stroke-width="1"/>'
            f'<text x="{LEFT - 8}" y="{y(level) + 4}" text-anchor="end" class="axis">{level}</text>'
        )
    for moment, what, factor in history.concerns:
        colour = "#dc2626" if what == "raised" else "#16a34a"
        parts.append(
            f'<line class="concern-{what}" x1="{axis.x(moment)}" x2="{axis.x(moment)}"'
            f' y1="{TOP}" y2="{TOP + inner_h}" stroke="{colour}" stroke-width="1.5"'
            f' stroke-dasharray="2 3"><title>concern {what}: {html.escape(factor)} at'
            f" {html.escape(label(moment))}</title></line>"
        )
    for index, factor in enumerate(FACTORS):
        shift = (index - (len(FACTORS) - 1) / 2) * FACTOR_OFFSET
        colour = FACTOR_COLOURS[factor]

        def shifted(rating: float, shift: float = shift) -> float:
            return round(y(rating) + shift, 2)

        values = [(moment, float(ratings[factor])) for moment, ratings in history.factors]
        parts.append(
            f'<polyline class="factor-line" data-factor="{factor}"'
            f' points="{step_points(axis, values, shifted)}" fill="none" stroke="{colour}"'
            ' stroke-width="2.5" stroke-linejoin="round"/>'
        )
        for moment, rating in values:
            parts.append(
                f'<circle cx="{axis.x(moment)}" cy="{shifted(rating)}" r="3.5" fill="{colour}">'
                f"<title>{html.escape(factor.replace('_', ' '))}"
                f" {int(rating)} at {html.escape(label(moment))}</title></circle>"
            )
    legend_x = LEFT
    for factor in FACTORS:
        name = factor.replace("_", " ")
        parts.append(
            f'<rect x="{legend_x}" y="{TOP - 30}" width="12" height="12" rx="2"'
            f' fill="{FACTOR_COLOURS[factor]}"/>'
            f'<text x="{legend_x + 16}" y="{TOP - 20}" class="legend">{html.escape(name)}</text>'
        )
        legend_x += 28 + 6 * len(name)
    parts.append(time_labels(axis, FACTOR_HEIGHT))
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
    health = (history.relationship_view or {}).get("health")
    concerns = (history.relationship_view or {}).get("concerns") or []
    chains = "".join(
        f"<li><b>{html.escape(schema)}</b>: {html.escape(status)}</li>"
        for schema, status in history.chains.items()
    )
    return PAGE.substitute(
        engagement_id=html.escape(history.engagement_id),
        as_of=html.escape(format_time(history.as_of) if history.as_of else "now (the whole log)"),
        stage=html.escape(str(stage)),
        score=html.escape(str(score)),
        health=html.escape("—" if health is None else str(health)),
        concerns=html.escape(", ".join(c.replace("_", " ") for c in concerns) or "none"),
        events=len(history.rows),
        chains=chains,
        chart=chart(history),
        factors_chart=factors_chart(history),
        stages=stage_table(history),
        rows=event_table(history),
    )


async def build_report(
    database_url: str, engagement_id: str, as_of: datetime | None, data_dir: Path
) -> str | None:
    """The report's HTML; None when neither intake nor engagement knows the id."""
    history = await load_history(database_url, engagement_id, as_of, data_dir)
    return None if history is None else render(history)
