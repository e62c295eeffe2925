"""`rapport demo` against the running test stack: every stage, a refuted claim, a check-in."""

from __future__ import annotations

import io

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


async def test_the_demo_says_so_when_no_stack_is_running() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    try:
        await run_demo(nowhere, nowhere, JWT_SECRET, console=Console(file=io.StringIO()))
    except DemoFailed as error:
        assert "make run" in str(error)
    else:
        raise AssertionError("the demo should fail without a stack")
