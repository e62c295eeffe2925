"""`rapport dev` brings the whole stack up on the embedded default and stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port


def test_rapport_dev_starts_three_healthy_services_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    ports = {name: free_port() for name in ("intake", "engagement", "notifications")}
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RAPPORT_DATABASE_URL", "RAPPORT_KAFKA_BOOTSTRAP", "RAPPORT_JWT_SECRET")
    }
    environment.update({f"RAPPORT_{name.upper()}_PORT": str(port) for name, port in ports.items()})
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
