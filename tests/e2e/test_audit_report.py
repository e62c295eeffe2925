"""As-of reads and `rapport audit report` over a real engagement driven through HTTP."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import shutil
import struct
import subprocess
import uuid
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from rapport.cli import app
from rapport.report import FACTOR_COLOURS
from services.engagement.domain.events import FACTORS
from shared.model.envelope import format_time, parse_time
from tests.support import Stack, auth, eventually, start_intake_journey

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TRUST_BLUE = (0x25, 0x63, 0xEB)
SCREEN = (1300, 2000)  # the width the report is read at; tall enough for both charts


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


class Engagement:
    """One engagement driven over HTTP; the live views are recorded after every command."""

    def __init__(self, http: httpx.AsyncClient, journey: dict[str, Any], coach_id: str) -> None:
        self.http = http
        self.id = journey["engagement_id"]
        self.client_id = journey["client_id"]
        self.coach_id = coach_id
        self.live: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    async def view(self, suffix: str = "", **params: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"/v1/engagements/{self.id}{suffix}",
            params=params,
            headers=auth("coach", self.coach_id),
        )
        return response.json() if response.status_code == 200 else None

    async def record(self, version: int) -> None:
        """Wait until both live views reached `version`, and keep them."""

        async def reached() -> tuple[dict[str, Any], dict[str, Any]] | None:
            stage, trust = await self.view(), await self.view("/trust")
            if stage and trust and stage["version"] == trust["version"] == version:
                return stage, trust
            return None

        self.live[version] = await eventually(reached)

    async def send(
        self, path: str, body: dict[str, Any] | None = None, *, role: str = "coach"
    ) -> dict[str, Any]:
        sub = self.client_id if role == "client" else self.coach_id
        response = await self.http.post(
            f"/v1/engagements/{self.id}/{path}",
            json=body,
            headers=auth(role, sub),  # type: ignore[arg-type]
        )
        assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        await self.record(answer["stream_version"])
        return answer


def checkin(rating: int, **others: int) -> dict[str, Any]:
    return {"ratings": {**dict.fromkeys(FACTORS, rating), **others}, "comment": "how it feels"}


async def a_lived_engagement(stack: Stack) -> Engagement:
    """Opened, plan started, one refuted and one confirmed homework, a client violation,
    transformation: the score moves and the stage changes twice. The client checks in on the
    relationship three times (a concern on active listening opens, then resolves), the coach
    once."""
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(
            intake, coach_id, client={"name": "Grace Hopper", "email": "grace@example.org"}
        )
    http = stack.client("engagement")
    engagement = Engagement(http, journey, coach_id)
    await engagement.record(1)
    due = format_time(stack.clock.now() + timedelta(days=7))
    await engagement.send("plan")
    await engagement.send("relationship-checkins", checkin(4, active_listening=2), role="client")
    for outcome in ("refuted", "confirmed"):
        homework = await engagement.send("homework", {"title": "Journal daily", "due_at": due})
        hid = homework["homework_id"]
        await engagement.send(f"homework/{hid}/claim", {"note": "done it"}, role="client")
        await engagement.send(f"homework/{hid}/verification", {"outcome": outcome})
    await engagement.send(
        "boundary-violations",
        {"violated_by": "client", "kind": "outside_agreed_contact", "description": "3am calls"},
    )
    await engagement.send(
        "relationship-checkins", checkin(3, active_listening=1, empathy=5), role="client"
    )
    await engagement.send("relationship-checkins", checkin(5), role="coach")
    await engagement.send("transformation", {"summary": "Runs 5k twice a week"})
    await engagement.send("relationship-checkins", checkin(5, collaboration=4), role="client")
    return engagement


async def stored_log(stack: Stack, engagement_id: str) -> list[dict[str, Any]]:
    async with stack.client("engagement") as http:
        response = await http.get(
            f"/v1/audit/streams/{engagement_id}/events", headers=auth("auditor", "a-1")
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def midpoint(first: str, second: str) -> str:
    start, end = parse_time(first), parse_time(second)
    return format_time(start + (end - start) / 2)


@pytest.fixture(autouse=True)
def cli_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stack.settings.database_url and stack.settings.master_key
    monkeypatch.setenv("RAPPORT_DATABASE_URL", stack.settings.database_url)
    monkeypatch.setenv("RAPPORT_MASTER_KEY", stack.settings.master_key)


@pytest.fixture
async def lived(stack: Stack) -> Any:
    engagement = await a_lived_engagement(stack)
    yield engagement
    await engagement.http.aclose()


async def test_an_as_of_read_between_two_events_equals_the_view_that_was_live_then(
    stack: Stack, lived: Engagement
) -> None:
    log = await stored_log(stack, lived.id)
    by_version = {item["stream_version"]: item for item in log}
    compared = 0
    for version, (stage, trust) in sorted(lived.live.items()):
        following = by_version.get(version + 1)
        if following is None or following["occurred_at"] == by_version[version]["occurred_at"]:
            continue
        as_of = midpoint(by_version[version]["occurred_at"], following["occurred_at"])
        assert await lived.view(as_of=as_of) == stage
        assert await lived.view("/trust", as_of=as_of) == trust
        compared += 1
    assert compared >= 8
    scores = [
        trust["score"] for _, trust in sorted(lived.live.values(), key=lambda v: v[0]["version"])
    ]
    assert len(set(scores)) >= 3  # the score really moved over the engagement's life


async def test_the_report_shows_stages_events_and_the_trust_chart_and_needs_no_network(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = await cli("audit", "report", lived.id, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    log = await stored_log(stack, lived.id)

    for forbidden in ("<script", "http://", "https://", "src=", "<link", "@import", "url("):
        assert forbidden not in page
    assert "<svg" in page and 'class="trust-line"' in page
    assert page.count('class="stage-change"') == 2  # working_the_plan, transformation
    assert page.count('class="stage-band"') == 3
    assert page.count('<tr class="event"') == len(log) + lived_intake_events(page)
    final_stage, final_trust = lived.live[max(lived.live)]
    assert f'<b id="stage">{final_stage["stage"]}</b>' in page
    assert f'<b id="score">{final_trust["score"]}</b>' in page
    for event in log:
        assert event["hash"] in page
    assert "Grace Hopper" in page and "3am calls" in page  # the key still exists
    assert "intact (" in page


async def test_the_report_draws_the_clients_six_factors_on_the_trust_charts_time_axis(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = await cli("audit", "report", lived.id, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    relationship = await lived.view("/relationship")
    assert relationship is not None and relationship["health"] is not None
    assert f'<b id="health">{relationship["health"]}</b>' in page
    assert '<b id="concerns">none</b>' in page
    for factor, colour in FACTOR_COLOURS.items():
        assert page.count(f'data-factor="{factor}"') == 1
        assert page.count(f'r="3.5" fill="{colour}"') == 3  # a point per client check-in
    assert page.count('class="concern-raised"') == 1
    assert page.count('class="concern-resolved"') == 1
    assert page.count('class="stage-band"') == 3
    assert page.count('class="factor-stage-band"') == 3 * len(FACTORS)  # in each factor's lane
    assert "concern raised: active_listening" in page
    assert page.count("&quot;how it feels&quot;") == 4  # each comment, decrypted, in the events


def lived_intake_events(page: str) -> int:
    return page.count('<tr class="event" data-service="intake"')


async def test_a_report_as_of_a_past_moment_shows_the_engagement_as_it_stood_then(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    log = await stored_log(stack, lived.id)
    plan = next(item for item in log if item["event_type"] == "PlanStarted")
    after = log[plan["stream_version"]]  # the event after PlanStarted
    as_of = midpoint(plan["occurred_at"], after["occurred_at"])
    out = tmp_path / "then.html"
    result = await cli("audit", "report", lived.id, "--as-of", as_of, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    stage, trust = lived.live[plan["stream_version"]]
    assert f'<b id="stage">{stage["stage"]}</b>' in page
    assert f'<b id="score">{trust["score"]}</b>' in page
    assert "HomeworkAssigned" not in page
    assert page.count('class="stage-change"') == 1


async def test_after_erasure_the_report_shows_personal_fields_as_erased(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    async with stack.client("intake") as intake:
        erased = await intake.post(
            f"/v1/clients/{lived.client_id}/erasure", headers=auth("admin", "ops")
        )
    assert erased.status_code == 201, erased.text
    out = tmp_path / "erased.html"
    result = await cli("audit", "report", lived.id, "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Grace Hopper" not in page and "3am calls" not in page
    assert "how it feels" not in page  # the check-in comments too
    assert "&quot;erased&quot;" in page
    assert "intact (" in page  # erasure leaves every hash whole


async def test_an_unknown_engagement_has_no_report(tmp_path: Path) -> None:
    result = await cli("audit", "report", str(uuid.uuid4()), "--out", str(tmp_path / "x.html"))
    assert result.exit_code == 1
    assert "no engagement" in result.output


# ----------------------------------------------------------------------------- chromium


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB or RGBA PNG (what Chromium writes) into RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind, line = raw[position], bytearray(raw[position + 1 : position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(line)
        previous = line
    pixels = [(row[i], row[i + 1], row[i + 2]) for row in rows for i in range(0, stride, channels)]
    return width, height, pixels


async def written_report(lived: Engagement, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    result = await cli("audit", "report", lived.id, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


async def chromium(page: Path, tmp_path: Path, *args: str) -> str:
    """Run headless Chromium on a page at the report's reading width; its standard output."""
    assert shutil.which(CHROMIUM), "headless Chromium is missing: `make chromium` installs it"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={SCREEN[0]},{SCREEN[1]}",
            *args,
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


@pytest.mark.chromium
async def test_headless_chromium_renders_the_trust_chart_and_the_six_factors_of_the_report(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    out = await written_report(lived, tmp_path)
    screenshot = tmp_path / "report.png"
    await chromium(out, tmp_path, f"--screenshot={screenshot}")
    width, height, pixels = png_pixels(screenshot.read_bytes())
    assert (width, height) == SCREEN
    colours = Counter(pixels)
    near_blue = near(colours, TRUST_BLUE)
    assert near_blue > 500  # the trust line and its points are drawn
    bands = {(0xE3, 0xF6, 0xE8), (0xFF, 0xF3, 0xD6), (0xE0, 0xEC, 0xFF)}
    assert all(colours[band] > 2000 for band in bands)  # the stages, shaded in both charts
    drawn = {factor: near(colours, rgb(colour)) for factor, colour in FACTOR_COLOURS.items()}
    assert all(count > 150 for count in drawn.values()), drawn  # each factor's line and points
    # Five factors end rated 5 alike: each is drawn in a lane of its own, one under the other
    # in the legend's order, so none hides another.
    middles = middle_rows(pixels, width)
    assert all(lower - upper > 40 for upper, lower in itertools.pairwise(middles)), middles
    print(f"screenshot: {screenshot}; {len(colours)} colours, {near_blue} trust-blue, {drawn}")


# Measures the events table as laid out: the data column's width, the values that wrapped
# inside a word (a `.word` taller than a line), and the table's height.
LAYOUT_PROBE = """<script>
const words = [...document.querySelectorAll(".word")];
const broken = words.filter(
  (w) => w.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(w).lineHeight));
document.body.dataset.layout = JSON.stringify({
  data: document.querySelector("dl.data").getBoundingClientRect().width,
  words: words.length,
  broken: broken.map((w) => w.textContent),
  events: document.querySelectorAll("tr.event").length,
  height: document.querySelector("table.events").getBoundingClientRect().height,
});
</script>"""


@pytest.mark.chromium
async def test_at_1300_pixels_the_events_data_is_wide_and_no_value_wraps_inside_a_word(
    stack: Stack, lived: Engagement, tmp_path: Path
) -> None:
    out = await written_report(lived, tmp_path)
    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    dom = await chromium(probed, tmp_path, "--dump-dom")
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found is not None, dom[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["data"] > 400, layout  # the widest column, not 80 px beside empty ones
    assert layout["words"] > 100 and layout["broken"] == [], layout
    assert layout["height"] / layout["events"] < 200, layout  # 21 events, not 6,000 px


def middle_rows(pixels: list[tuple[int, int, int]], width: int) -> list[int]:
    """The median row of each factor's pixels (those near its colour), in the legend's order."""
    of_colour = {
        pixel: factor
        for pixel in set(pixels)
        for factor, colour in FACTOR_COLOURS.items()
        if close(pixel, rgb(colour))
    }
    rows: dict[str, list[int]] = {factor: [] for factor in FACTORS}
    for index, pixel in enumerate(pixels):
        factor = of_colour.get(pixel)
        if factor is not None:
            rows[factor].append(index // width)
    assert all(rows.values()), {factor: len(found) for factor, found in rows.items()}
    return [sorted(found)[len(found) // 2] for found in rows.values()]


def close(pixel: tuple[int, int, int], target: tuple[int, int, int]) -> bool:
    return all(abs(channel - wanted) < 30 for channel, wanted in zip(pixel, target, strict=True))


def rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def near(colours: Counter[tuple[int, int, int]], target: tuple[int, int, int]) -> int:
    """Pixels within a small distance of a colour (anti-aliasing blurs the edges)."""
    return sum(count for colour, count in colours.items() if close(colour, target))
