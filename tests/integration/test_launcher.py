"""The process launcher of `rapport dev`, the fault suite and the bench, on real child processes
(small HTTP servers whose `/health` is a file): health of an instance's own process, kills,
restarts under a policy, and exits reported with the instance's log."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from rapport.infra.launcher import (
    Event,
    InstanceFailed,
    Launcher,
    Reaped,
    Restarting,
    RestartPolicy,
    Started,
)
from rapport.infra.processes import free_port, pid_alive


def web_server(root: Path, port: int) -> list[str]:
    """A server answering `GET /health` with 200 on `port`."""
    (root / "site").mkdir(exist_ok=True)
    (root / "site" / "health").write_text("ok")
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
            "--directory", str(root / "site")]  # fmt: skip


def web(launcher: Launcher, root: Path, name: str = "web") -> int:
    port = free_port()
    launcher.add(name, web_server(root, port), port=port)
    launcher.start(name)
    return port


def test_an_instance_is_healthy_when_its_own_process_answers_and_a_kill_ends_it(
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    with Launcher(os.environ, tmp_path / "logs", on_event=events.append) as launcher:
        web(launcher, tmp_path)
        launcher.wait_healthy()
        pid = launcher.instances["web"].pid
        assert pid is not None and launcher.answers(launcher.instances["web"])

        launcher.kill("web")

        assert launcher.instances["web"].process is None
        assert not pid_alive(pid)
    assert events == [Started("web", pid), Reaped("web", pid, -signal.SIGKILL)]


def test_a_port_another_process_answers_does_not_make_an_instance_healthy(
    tmp_path: Path,
) -> None:
    with Launcher(os.environ, tmp_path / "logs") as launcher:
        port = web(launcher, tmp_path, "squatter")
        launcher.wait_healthy(["squatter"])
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        impostor = launcher.add("impostor", sleeper, port=port)
        launcher.start("impostor")

        assert not launcher.answers(impostor)  # /health there is the squatter's
        with pytest.raises(InstanceFailed, match="not healthy after 1 s: impostor"):
            launcher.wait_healthy(["impostor"], timeout=1)


def test_without_a_policy_an_instance_that_exits_fails_the_wait_with_its_log(
    tmp_path: Path,
) -> None:
    with Launcher(os.environ, tmp_path / "logs") as launcher:
        launcher.add("broken", [sys.executable, "-c", "print('no config'); raise SystemExit(3)"])
        launcher.start("broken")
        with pytest.raises(InstanceFailed, match="broken exited with code 3") as failure:
            launcher.wait_healthy()
    assert "no config" in str(failure.value)
    assert launcher.instances["broken"].exit_codes == [3]


def test_under_a_policy_an_instance_that_dies_is_started_again_after_its_pause(
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    policy = RestartPolicy(first_delay=0.1)
    with Launcher(os.environ, tmp_path / "logs", policy=policy, on_event=events.append) as launcher:
        web(launcher, tmp_path)
        launcher.wait_healthy()
        first = launcher.instances["web"].pid
        assert first is not None

        os.kill(first, signal.SIGKILL)  # not through the launcher: it notices by itself
        deadline = time.monotonic() + 60
        while launcher.instances["web"].pid in (None, first) or not (
            launcher.instances["web"].healthy_once
        ):
            assert time.monotonic() < deadline, launcher.log_tail("web")
            time.sleep(0.1)
            launcher.tend()

        second = launcher.instances["web"].pid
    assert events[:4] == [
        Started("web", first),
        Reaped("web", first, -signal.SIGKILL, restart_in=0.1),
        Restarting("web", 1),
        Started("web", second),
    ]


async def test_waiting_inside_an_event_loop_sees_an_instance_come_up(tmp_path: Path) -> None:
    with Launcher(os.environ, tmp_path / "logs") as launcher:
        web(launcher, tmp_path)
        await launcher.wait_healthy_async(["web"])
        assert launcher.instances["web"].healthy_once
    assert launcher.instances["web"].process is None  # stopped on leaving the block
