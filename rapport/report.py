"""`rapport audit report`: one engagement's history as a self-contained HTML file.

`rapport.history` loads what the page shows; this module renders it. Personal fields are shown
as "erased" where the client's key was destroyed. The page has inline CSS and inline SVG charts
(the trust score, and below it on the same time axis the client's six factors): it needs no
network and no script.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rapport.history import History, HomeworkRecord, load_history
from rapport.report_template import PAGE
from services.engagement.domain.events import FACTORS
from shared.model.envelope import format_time, parse_time

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
LOWEST, HIGHEST, LOW = 1, 5, 2  # ratings; 2 or lower is low (contract section 7)
# The six-factor chart: a lane a factor, its name above a plot of the 1..5 scale.
LANES_TOP, LANE_LABEL, LANE_PLOT, LANE_GAP = 8, 16, 46, 10
LANE_STEP = LANE_LABEL + LANE_PLOT + LANE_GAP


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


def stage_bands(history: History, axis: TimeAxis, top: float, bottom: float, css: str) -> list[str]:
    """The stages as shaded bands behind a chart, from `top` to `bottom`."""
    bands = []
    for index, (stage, entered) in enumerate(history.stages):
        left = axis.x(max(entered, axis.start))
        following = history.stages[index + 1][1] if index + 1 < len(history.stages) else None
        right = axis.x(following) if following else axis.x(axis.end)
        colour = STAGE_COLOURS.get(stage, "#eeeeee")
        bands.append(
            f'<rect class="{css}" x="{left}" y="{top}" width="{max(right - left, 0.5)}"'
            f' height="{bottom - top}" fill="{colour}"><title>{html.escape(stage)}</title></rect>'
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
        *stage_bands(history, axis, TOP, HEIGHT - BOTTOM, "stage-band"),
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
    """The client's six ratings (1..5) after each client check-in as small multiples: one lane
    a factor, each its own step line on the trust chart's time axis, so factors rated alike
    never hide each other. The low zone (2 or lower) is shaded in each lane, and a concern is
    marked in the lane of its factor."""
    axis = time_axis(history)
    if axis is None or not history.factors:
        return '<p class="muted">No client check-in yet: no ratings of the relationship.</p>'
    height = LANES_TOP + len(FACTORS) * LANE_STEP + BOTTOM
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        ' role="img" aria-labelledby="factors-title" class="chart factors">',
        '<title id="factors-title">The client\'s six factors of the relationship over time,'
        " one lane a factor</title>",
    ]
    for index, factor in enumerate(FACTORS):
        parts.append(factor_lane(history, axis, factor, LANES_TOP + index * LANE_STEP))
    parts.append(time_labels(axis, height))
    parts.append("</svg>")
    return "".join(parts)


def factor_lane(history: History, axis: TimeAxis, factor: str, top: float) -> str:
    """One factor's lane: its name, the 1..5 scale, the low zone, its concerns, its line."""
    plot_top = top + LANE_LABEL

    def y(rating: float) -> float:
        return round(plot_top + LANE_PLOT * (HIGHEST + 0.5 - rating) / (HIGHEST - LOWEST + 1), 2)

    colour, name = FACTOR_COLOURS[factor], factor.replace("_", " ")
    parts = [
        *stage_bands(history, axis, plot_top, plot_top + LANE_PLOT, "factor-stage-band"),
        f'<text x="{LEFT}" y="{top + LANE_LABEL - 4}" class="lane-label" fill="{colour}">'
        f"{html.escape(name)}</text>",
        f'<rect class="low-zone" x="{LEFT}" y="{y(LOW + 0.5)}" width="{WIDTH - LEFT - RIGHT}"'
        f' height="{round(y(LOWEST - 0.5) - y(LOW + 0.5), 2)}" fill="#fca5a5"'
        ' fill-opacity="0.3"><title>low: 2 or less</title></rect>',
    ]
    for level in (LOWEST, 3, HIGHEST):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level)}" y2="{y(level)}"'
            ' stroke="#c8ccd2" stroke-width="1"/>'
            f'<text x="{LEFT - 8}" y="{y(level) + 4}" text-anchor="end" class="axis">{level}</text>'
        )
    for moment, what, concerned in history.concerns:
        if concerned != factor:
            continue
        stroke = "#dc2626" if what == "raised" else "#15803d"
        parts.append(
            f'<line class="concern-{what}" x1="{axis.x(moment)}" x2="{axis.x(moment)}"'
            f' y1="{plot_top}" y2="{plot_top + LANE_PLOT}" stroke="{stroke}" stroke-width="2"'
            f' stroke-dasharray="2 3"><title>concern {what}: {html.escape(factor)} at'
            f" {html.escape(label(moment))}</title></line>"
        )
    values = [(moment, float(ratings[factor])) for moment, ratings in history.factors]
    parts.append(
        f'<polyline class="factor-line" data-factor="{factor}"'
        f' points="{step_points(axis, values, y)}" fill="none" stroke="{colour}"'
        ' stroke-width="2.5" stroke-linejoin="round"/>'
    )
    for moment, rating in values:
        parts.append(
            f'<circle cx="{axis.x(moment)}" cy="{y(rating)}" r="3.5" fill="{colour}">'
            f"<title>{html.escape(name)} {int(rating)} at {html.escape(label(moment))}"
            "</title></circle>"
        )
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


# A JSON string with no space in it: an id, a time, a name. It wraps only as a whole.
WORD = re.compile(r'"[^"\s\\]*"')


def compact(value: Any) -> str:
    """A value as one line of JSON with a space after each comma and colon, so that a long
    one wraps between its items."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def unbroken(text: str) -> str:
    """`text` escaped for HTML, each of its words (see `WORD`) kept whole: a line wraps before
    it rather than inside it, unless it is longer than a whole line."""
    parts, last = [], 0
    for word in WORD.finditer(text):
        parts.append(html.escape(text[last : word.start()]))
        parts.append(f'<span class="word">{html.escape(word.group())}</span>')
        last = word.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def event_data(data: Any) -> str:
    """An event's data as a list of its fields, one line each (wrapped between items)."""
    if not isinstance(data, dict) or not data:
        return f'<code class="value">{unbroken(compact(data))}</code>'
    fields = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{unbroken(compact(value))}</dd>"
        for name, value in sorted(data.items())
    )
    return f'<dl class="data">{fields}</dl>'


def event_table(history: History) -> str:
    rows = []
    for number, row in enumerate(history.rows, start=1):
        envelope = row.envelope
        after = ""
        if row.stage is not None:
            after = f"{html.escape(row.stage.replace('_', ' '))}<br>"
        if row.score is not None:
            after += f'<span class="muted">trust</span> {row.score}'
        rows.append(
            f'<tr class="event" data-service="{html.escape(envelope.producer)}">'
            f'<td class="number">{number}</td>'
            f"<td>{html.escape(label(envelope.occurred))}<br>"
            f'<span class="muted">{html.escape(envelope.producer)}'
            f" · version {envelope.stream_version}</span></td>"
            f'<td><span class="type">{html.escape(envelope.event_type)}</span>'
            f' <span class="muted">v{envelope.schema_version}</span><br>'
            f'<span class="muted actor">by {html.escape(envelope.actor.role)}'
            f' <span class="word">{html.escape(envelope.actor.id)}</span></span></td>'
            f"<td>{event_data(row.data)}</td>"
            f"<td>{after}</td>"
            f'<td class="hash" title="{envelope.hash}">{envelope.hash[:12]}…</td></tr>'
        )
    return "".join(rows)


def table(columns: Sequence[str], rows: str) -> str:
    """A table of the findings: its column heads (escaped here) and its rows (HTML)."""
    heads = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def shown_text(value: Any) -> str:
    """A personal field as the findings show it: its text, or what stands in for it."""
    return html.escape(value if isinstance(value, str) else compact(value))


def violations_finding(history: History) -> str:
    items = list(history.violations.values())
    if not items:
        return '<p class="muted">No boundary violation was reported.</p>'
    rows = "".join(
        f'<tr class="violation {"addressed" if v.addressed_at else "open"}">'
        f"<td>{html.escape(label(v.reported_at))}</td><td>{html.escape(v.violated_by)}</td>"
        f"<td>{html.escape(v.kind.replace('_', ' '))}</td><td>{shown_text(v.description)}</td>"
        + (
            f"<td>addressed {html.escape(label(v.addressed_at))}: {shown_text(v.steps)}</td>"
            if v.addressed_at
            else '<td class="alert">open</td>'
        )
        + "</tr>"
        for v in items
    )
    return table(("reported", "by", "kind", "description", "status"), rows)


def supervision_finding(history: History) -> str:
    if not history.recommendations:
        return '<p class="muted">No supervision was recommended.</p>'
    rows = "".join(
        f'<tr class="recommendation"><td>{html.escape(label(r.at))}</td>'
        f"<td>{html.escape(r.party)}</td><td>{html.escape(r.reason.replace('_', ' '))}</td></tr>"
        for r in history.recommendations
    )
    return table(("recommended", "for", "reason"), rows)


def homework_status(item: HomeworkRecord) -> str:
    if item.outcome is not None and item.verified_at is not None:
        css = "alert" if item.outcome == "refuted" else "good"
        return f'<td class="{css}">{item.outcome} {html.escape(label(item.verified_at))}</td>'
    if item.claimed_at is not None:
        return '<td class="alert">claimed, awaiting verification</td>'
    return '<td class="muted">not claimed</td>'


def homework_finding(history: History) -> str:
    if not history.homework:
        return '<p class="muted">No homework was assigned.</p>'
    rows = "".join(
        f'<tr class="homework"><td>{shown_text(item.title)}</td>'
        f"<td>{html.escape(label(parse_time(item.due_at)))}</td>"
        f"<td>{html.escape(label(item.claimed_at)) if item.claimed_at else '—'}</td>"
        f"{homework_status(item)}</tr>"
        for item in history.homework.values()
    )
    return table(("homework", "due", "claimed by the client", "verified by the coach"), rows)


GAP_WORTH_A_LOOK = 2  # a coach who rates a factor 2 points apart from the client


def gaps_finding(history: History) -> str:
    view = history.relationship_view or {}
    latest = view.get("latest") or {}
    client, coach = latest.get("client"), latest.get("coach")
    if not client or not coach:
        return (
            '<p class="muted">No gap yet: it needs a check-in from both the client and the'
            " coach.</p>"
        )
    gaps = view.get("gaps") or {}
    rows = []
    for factor in FACTORS:
        gap = gaps.get(factor)
        css = ' class="alert"' if gap is not None and abs(gap) >= GAP_WORTH_A_LOOK else ""
        shown_gap = "—" if gap is None else f"{gap:+g}" if gap else "0"
        rows.append(
            f'<tr class="gap" data-gap="{factor}"><td>{factor.replace("_", " ")}</td>'
            f"<td>{client.get(factor, '—')}</td><td>{coach.get(factor, '—')}</td>"
            f"<td{css}>{shown_gap}</td></tr>"
        )
    columns = ("factor", "client's latest", "coach's latest", "gap (coach \N{MINUS SIGN} client)")
    return table(columns, "".join(rows))


def findings(history: History) -> dict[str, str]:
    """The findings' figures (from the engagement's own views) and their lists."""
    stage_view = history.stage_view or {}
    homework = stage_view.get("homework") or {}
    addressed = sum(1 for v in history.violations.values() if v.addressed_at is not None)
    gaps = (history.relationship_view or {}).get("gaps") or {}
    wide = [f for f, gap in gaps.items() if abs(gap) >= GAP_WORTH_A_LOOK]
    figures = {
        "violations_open": stage_view.get("open_violations", 0),
        "violations_addressed": addressed,
        "recommendations": stage_view.get("supervision_recommendations", 0),
        "assigned": homework.get("assigned", 0),
        "claimed": homework.get("claimed", 0),
        "confirmed": homework.get("confirmed", 0),
        "refuted": homework.get("refuted", 0),
        "awaiting": homework.get("awaiting_verification", 0),
        "wide_gaps": len(wide),
    }
    return {
        **{name: html.escape(str(value)) for name, value in figures.items()},
        "violations": violations_finding(history),
        "supervision": supervision_finding(history),
        "homework": homework_finding(history),
        "gaps": gaps_finding(history),
    }


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
        **findings(history),
    )


async def build_report(
    database_url: str, engagement_id: str, as_of: datetime | None, data_dir: Path
) -> str | None:
    """The report's HTML; None when neither intake nor engagement knows the id."""
    history = await load_history(database_url, engagement_id, as_of, data_dir)
    return None if history is None else render(history)
