"""The system under measurement, as processes: the three services of the measured tree, the
ceiling app beside them, and child scripts that run with the measured tree's code.

The harness never imports the measured code. Each process gets the tree as its working
directory and first path entry (`PYTHONPATH`), so `python -m services.engagement` and the
child scripts resolve `shared` and `services` there, with this interpreter's dependencies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rapport.infra.processes import (
    die_with_parent,
    free_port,
    log_tail,
    register_cleanup,
    stop_process,
    unregister_cleanup,
)

SERVICES = ("intake", "engagement", "notifications")
HERE = Path(__file__).resolve().parent
CHILDREN = HERE / "children"
CHILD_MARK = "BENCH-RESULT "


class ChildFailed(RuntimeError):
    """A child script exited without a result."""


@dataclass
class Running:
    """One long-running process of the stack."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """The measured tree's services and helpers, against one database and one broker."""

    project: Path
    workdir: Path
    database_url: str
    kafka_bootstrap: str
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    master_key: str = field(
        default_factory=lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
    )
    running: dict[str, Running] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)  # RAPPORT_WORKERS per service

    def base_env(self) -> dict[str, str]:
        """This environment without any RAPPORT_* setting, the measured tree first on the path."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env["PYTHONPATH"] = str(self.project)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def service_env(self, service: str, port: int) -> dict[str, str]:
        return {
            **self.base_env(),
            "RAPPORT_DATABASE_URL": self.database_url,
            "RAPPORT_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "RAPPORT_JWT_SECRET": self.jwt_secret,
            "RAPPORT_MASTER_KEY": self.master_key,
            f"RAPPORT_{service.upper()}_PORT": str(port),
            "RAPPORT_LOG_LEVEL": "warning",
            "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "RAPPORT_WORKERS": str(self.workers.get(service, 1)),
        }

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str], port: int) -> Running:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                cwd=self.project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        register_cleanup(id(process), lambda: stop_process(process, name))
        running = Running(name, port, process, log_path)
        self.running[name] = running
        return running

    def start_service(
        self, service: str, *, name: str | None = None, env: dict[str, str] | None = None
    ) -> Running:
        """`python -m services.<service>` of the measured tree, on a free port; `name` for a
        further instance, `env` for settings of its own."""
        port = free_port()
        argv = [sys.executable, "-m", f"services.{service}"]
        return self._spawn(
            name or service, argv, {**self.service_env(service, port), **(env or {})}, port
        )

    def start_ceiling(self, pool_size: int) -> Running:
        """The ceiling app (harness code, third-party imports only) on a free port."""
        port = free_port()
        env = {
            **self.base_env(),
            "BENCH_CEILING_DSN": self.database_url,
            "BENCH_CEILING_PORT": str(port),
            "BENCH_CEILING_POOL": str(pool_size),
        }
        argv = [sys.executable, "-P", str(HERE / "ceiling.py")]
        return self._spawn("ceiling", argv, env, port)

    async def wait_healthy(self, name: str, timeout: float = 120.0) -> None:
        """Until `GET /health` answers 200; a process that exits is an error with its log."""
        running = self.running[name]
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                if running.process.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{log_tail(running.log)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{running.url}/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} not healthy in {timeout:.0f} s\n{log_tail(running.log)}"
                    )
                await asyncio.sleep(0.2)

    def stop(self, name: str) -> None:
        running = self.running.pop(name, None)
        if running is not None:
            stop_process(running.process, name)
            unregister_cleanup(id(running.process))

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def url(self, name: str) -> str:
        return self.running[name].url

    def child(self, script: str, *args: str) -> subprocess.Popen[str]:
        """Start a child script of `children/` with the measured tree's code."""
        log_path = self.workdir / f"{Path(script).stem}.log"
        log = log_path.open("a")
        try:
            return subprocess.Popen(
                [sys.executable, "-P", str(CHILDREN / script), *args],
                cwd=self.project,
                env=self.base_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                preexec_fn=die_with_parent(),
            )
        finally:
            log.close()

    def child_result(self, process: subprocess.Popen[str], script: str) -> dict[str, object]:
        """Wait for a child and return the JSON it printed after CHILD_MARK."""
        stdout, _ = process.communicate()
        for line in reversed(stdout.splitlines()):
            if line.startswith(CHILD_MARK):
                result: dict[str, object] = json.loads(line[len(CHILD_MARK) :])
                return result
        log_path = self.workdir / f"{Path(script).stem}.log"
        raise ChildFailed(f"{script} exited with {process.returncode}:\n{log_tail(log_path)}")

    def run_child(self, script: str, *args: str) -> dict[str, object]:
        return self.child_result(self.child(script, *args), script)
