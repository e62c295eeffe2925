"""`/docs` on every service: Swagger UI from the service itself, so the API docs work on a
machine that reaches nothing else (no CDN)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from rapport.registry import SERVICES
from tests.e2e.test_audit_report import CHROMIUM, near, png_pixels
from tests.support import Stack

REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""")
# The colours Swagger UI gives GET and POST operations: drawn only once the script ran.
GET_BLUE, POST_GREEN = (0x61, 0xAF, 0xFE), (0x49, 0xCC, 0x90)


async def test_every_docs_page_loads_only_assets_its_own_service_serves(stack: Stack) -> None:
    for name in SERVICES:
        async with stack.client(name) as http:
            page = await http.get("/docs")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            assert "http://" not in page.text and "https://" not in page.text
            references = [a or b for a, b in REFERENCE.findall(page.text)]
            assert len(references) == 4, references  # the script, the styles, an icon, the API
            for reference in references:
                assert reference.startswith("/") and not reference.startswith("//"), reference
                served = await http.get(reference)
                assert served.status_code == 200, f"{name} {reference}: {served.status_code}"
                assert served.content, reference
            script = await http.get(next(r for r in references if r.endswith(".js")))
            assert script.headers["content-type"].startswith("text/javascript")
            assert b"SwaggerUIBundle" in script.content
            styles = await http.get(next(r for r in references if r.endswith(".css")))
            assert styles.headers["content-type"].startswith("text/css")
            assert (await http.get("/redoc")).status_code == 404  # ReDoc would need a CDN


@pytest.mark.chromium
async def test_headless_chromium_shows_the_api_docs_with_every_other_address_blocked(
    stack: Stack, tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), "headless Chromium is missing: `make chromium` installs it"
    screenshot = tmp_path / "docs.png"
    await asyncio.to_thread(
        subprocess.run,
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            # every host but this machine's answers nothing, as on a machine with no way out
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}",
            "--window-size=1200,900",
            f"{stack.url('engagement')}/docs",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    colours = Counter(png_pixels(screenshot.read_bytes())[2])
    assert near(colours, GET_BLUE) > 500 and near(colours, POST_GREEN) > 500, "a blank page"
