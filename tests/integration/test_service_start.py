"""A service started on its own refuses to run without its configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rapport.registry import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_without_its_secrets_refuses_to_start_with_a_clear_message(service: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    environment["RAPPORT_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "RAPPORT_JWT_SECRET" in result.stderr and "RAPPORT_MASTER_KEY" in result.stderr
    assert "RAPPORT_KAFKA_BOOTSTRAP" in result.stderr
