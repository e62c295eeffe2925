"""The system under measurement, as processes: the three services of the measured tree, the
ceiling app beside them, and child scripts that run with the measured tree's code.

The harness never imports the measured code. Each process gets the tree as its working
directory and first path entry (`PYTHONPATH`), so `python -m services.engagement` and the
child scripts resolve `shared` and `services` there, with this interpreter's dependencies.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rapport.infra.launcher import Instance, Launcher, stack_environment
from rapport.infra.processes import die_with_parent, free_port, log_tail

HERE = Path(__file__).resolve().parent
CHILDREN = HERE / "children"
CHILD_MARK = "BENCH-RESULT "
HEALTH_TIMEOUT = 120.0  # seconds; the first start migrates each schema


class ChildFailed(RuntimeError):
    """A child script exited without a result."""


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
    workers: dict[str, int] = field(default_factory=dict)  # RAPPORT_WORKERS per service
    launcher: Launcher = field(init=False)

    def __post_init__(self) -> None:
        environment = stack_environment(
            self.base_env(),
            database_url=self.database_url,
            kafka_bootstrap=self.kafka_bootstrap,
            jwt_secret=self.jwt_secret,
            master_key=self.master_key,
        )
        self.launcher = Launcher(environment, self.workdir, cwd=self.project)

    def base_env(self) -> dict[str, str]:
        """This environment without any RAPPORT_* setting, the measured tree first on the path."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env["PYTHONPATH"] = str(self.project)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start_service(
        self, service: str, *, name: str | None = None, env: dict[str, str] | None = None
    ) -> Instance:
        """`python -m services.<service>` of the measured tree, on a free port; `name` for a
        further instance, `env` for settings of its own."""
        settings = {"RAPPORT_WORKERS": str(self.workers.get(service, 1)), **(env or {})}
        self.launcher.add_service(name or service, service, settings=settings)
        return self.launcher.start(name or service)

    def start_ceiling(self, pool_size: int) -> Instance:
        """The ceiling app (harness code, third-party imports only) on a free port."""
        port = free_port()
        settings = {
            "BENCH_CEILING_DSN": self.database_url,
            "BENCH_CEILING_PORT": str(port),
            "BENCH_CEILING_POOL": str(pool_size),
        }
        argv = [sys.executable, "-P", str(HERE / "ceiling.py")]
        self.launcher.add("ceiling", argv, port=port, settings=settings)
        return self.launcher.start("ceiling")

    def wait_healthy(self, *names: str) -> None:
        """Until each named process answers `GET /health` with 200; one that exits is an error
        with its log."""
        self.launcher.wait_healthy(names, HEALTH_TIMEOUT)

    def stop_all(self) -> None:
        self.launcher.stop_all()

    def url(self, name: str) -> str:
        return self.launcher.instances[name].url

    def pids(self) -> dict[str, int]:
        """The process of each running instance, by name."""
        return {n: i.pid for n, i in self.launcher.instances.items() if i.pid is not None}

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
