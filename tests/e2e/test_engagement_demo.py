"""`rapport demo` against the running test stack: every stage, a refuted claim, a check-in."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys

from rich.console import Console

from rapport.demo import DemoFailed, run_demo
from tests.support import JWT_SECRET, Stack, free_port


async def test_the_demo_walks_one_client_through_every_stage_and_prints_the_scores(
    stack: Stack,
) -> None:
    output = io.StringIO()
    console = Console(file=output, width=140)
    steps = await run_demo(
        stack.url("intake"), stack.url("engagement"), JWT_SECRET, console=console
    )

    assert steps[0].stage == "commitment"
    assert steps[-1].stage == "graduated"
    seen = list(dict.fromkeys(s.stage for s in steps))
    assert seen == ["commitment", "working_the_plan", "transformation", "graduation", "graduated"]
    refuted = next(s for s in steps if s.step == "Coach refutes the claim")
    assert refuted.score == 75
    assert [s.score for s in steps][:5] == [100, 100, 100, 100, 100]
    assert any(s.step == "Boundary check-in" for s in steps)
    concerns = [s.concerns for s in steps]
    raised = concerns.index(("active_listening",))
    assert concerns[:raised] == [()] * raised  # one concern opens ...
    resolved = concerns.index((), raised)
    assert concerns[resolved:] == [()] * (len(steps) - resolved)  # ... and resolves
    assert steps[resolved].step == "Client: listening 4, concern resolved"
    assert steps[0].health is None and steps[-1].health == 75
    versions = [s.version for s in steps]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    printed = output.getvalue()
    for text in ("Stage timeline", "Coach refutes the claim", "graduated", "75", "concern"):
        assert text in printed
    assert "rapport audit report" in printed and "Try next" in printed


async def test_the_demo_says_so_when_no_stack_is_running() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    try:
        await run_demo(nowhere, nowhere, JWT_SECRET, console=Console(file=io.StringIO()))
    except DemoFailed as error:
        assert "make run" in str(error)
    else:
        raise AssertionError("the demo should fail without a stack")


async def test_the_demo_in_a_pipe_keeps_every_table_cell_whole_and_says_what_to_try_next(
    stack: Stack,
) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "rapport.cli",
            "demo",
            "--intake-url",
            stack.url("intake"),
            "--engagement-url",
            stack.url("engagement"),
        ],
        capture_output=True,  # `rapport demo | cat`: stdout is a pipe, not a terminal
        text=True,
        env={**os.environ, "RAPPORT_JWT_SECRET": JWT_SECRET, "COLUMNS": "80"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    assert "…" not in printed  # no cell cut short
    for cell in ("working_the_plan", "transformation", "Client: listening 1, concern raised"):
        assert cell in printed
    suggested = re.search(r"rapport audit report ([0-9a-f-]{36}) --out report\.html", printed)
    assert suggested is not None, printed
    assert f"Engagement {suggested.group(1)}" in printed  # the engagement the demo walked
