"""`rapport dev` brings the whole stack up on the embedded default and stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from rapport.listeners import listens_on
from tests.support import free_port


def test_rapport_dev_starts_three_healthy_services_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("intake", "engagement", "notifications")}
    environment = embedded_default(ports)
    output = tmp_path / "dev.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "rapport.cli", "dev", "--data-dir", str(tmp_path / "data")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + 90
        while "Rapport is running" not in output.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, output.read_text()
            time.sleep(0.2)
        printed = output.read_text()
        assert "Rapport is running" in printed, printed
        assert "RAPPORT_JWT_SECRET=" in printed and "Admin token" in printed
        for port in ports.values():
            assert f"http://127.0.0.1:{port}" in printed
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            assert health.status_code == 200
            assert health.json()["checks"] == {"database": True, "broker": True}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "stopped cleanly" in output.read_text()
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            raise AssertionError(f"port {port} still answers after the stop")
        except httpx.ConnectError:
            pass
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", leftovers.stdout


def test_rapport_dev_restarts_a_dead_child_and_leaves_nothing_behind_when_killed(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("intake", "engagement", "notifications")}
    environment = embedded_default(ports)
    output = tmp_path / "dev.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "rapport.cli", "dev", "--data-dir", str(tmp_path / "data")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        wait_for(lambda: "Rapport is running" in output.read_text(), 90, output)
        dev = psutil.Process(process.pid)
        engagement = next(
            child for child in dev.children() if "services.engagement" in child.cmdline()
        )
        engagement.kill()
        wait_for(lambda: "restarting engagement" in output.read_text(), 30, output)
        wait_for(lambda: healthy(ports["engagement"]), 60, output)
        assert process.poll() is None, "one dead child must not stop the stack"

        started = [*dev.children(recursive=True)]
        postmaster = int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().split()[0])
        started.append(psutil.Process(postmaster))
        process.kill()  # SIGKILL: no chance to clean up itself
        process.wait()
        wait_for(lambda: not any(p.is_running() and not zombie(p) for p in started), 30, output)
        for port in ports.values():
            assert not healthy(port), f"port {port} still answers after rapport dev was killed"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def embedded_default(ports: dict[str, int]) -> dict[str, str]:
    """The environment of a `rapport dev` on the embedded default, its services on `ports`."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RAPPORT_DATABASE_URL", "RAPPORT_KAFKA_BOOTSTRAP", "RAPPORT_JWT_SECRET")
    }
    environment.update({f"RAPPORT_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return environment


def zombie(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, output: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, output.read_text()
        time.sleep(0.2)


def test_rapport_dev_with_a_port_taken_exits_at_once_naming_it_and_what_holds_it(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("intake", "engagement", "notifications")}
    with socket.socket() as squatter:  # another stack's engagement service, say
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports["engagement"] = squatter.getsockname()[1]
        environment = embedded_default(ports)
        done = subprocess.run(
            [sys.executable, "-m", "rapport.cli", "dev", "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
    told = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stdout + done.stderr
    taken = ports["engagement"]
    assert f"port {taken} (engagement, RAPPORT_ENGAGEMENT_PORT) is in use by pid" in told
    assert f"pid {os.getpid()} (" in told  # the process that holds it, by its command line
    assert "Rapport is running" not in done.stdout
    assert not (tmp_path / "data").exists()  # nothing was started: no database, no secrets


def test_a_process_is_known_to_listen_on_a_port_only_when_the_socket_is_its_own() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert listens_on(os.getpid(), port)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert not listens_on(child.pid, port)  # a health check there answers someone else
        finally:
            child.kill()
            child.wait()
