"""The one launcher of Rapport's processes: `rapport dev`, the fault suite and the bench start
the services (and the bench its ceiling app) through it.

Each instance is a child process in its own process group (`python -m services.<service>`
for a service), with the stack's environment, its port and settings of its own, and its
output in `<log_dir>/<name>.log`. It is healthy once its own process (or one of its worker
processes) listens on its port and answers `GET /health` with 200, so whatever else listens
there does not count. Under a `RestartPolicy` the launcher supervises: `tend()` notices an
instance that exited and starts it again after a growing pause, and gives up on one that keeps
failing at start. It kills (SIGKILL, for fault tests), starts again and stops instances one by
one, and stops them all on exit; an `atexit` hook stops whatever is left should the caller
never get there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from rapport.infra.processes import (
    die_with_parent,
    free_port,
    log_tail,
    register_cleanup,
    unregister_cleanup,
    wait_or_kill_group,
)
from rapport.listeners import listens_on
from rapport.registry import port_variable, service_module

__all__ = [
    "Event",
    "GaveUp",
    "Instance",
    "InstanceFailed",
    "Launcher",
    "Reaped",
    "RestartPolicy",
    "Restarting",
    "Restarts",
    "Started",
    "stack_environment",
]

STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL
HEALTH_TIMEOUT = 90.0  # seconds an instance may take to answer /health
POLL = 0.2  # seconds between two looks at the instances while waiting


def stack_environment(
    base: Mapping[str, str],
    *,
    database_url: str,
    kafka_bootstrap: str,
    jwt_secret: str,
    master_key: str,
) -> dict[str, str]:
    """`base` with what every process of one stack shares: its database, broker and secrets,
    and the development defaults unless `base` sets them (warning logs, webhooks to private
    addresses allowed: local receivers are the point there)."""
    return {
        "RAPPORT_LOG_LEVEL": "warning",
        "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
        **base,
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "RAPPORT_JWT_SECRET": jwt_secret,
        "RAPPORT_MASTER_KEY": master_key,
    }


@dataclass(frozen=True)
class RestartPolicy:
    """When an instance that exited starts again, and when the launcher gives up on it.

    The pause before a restart doubles with each exit that comes less than `stable_after`
    seconds after its start, from `first_delay` up to `max_delay`; an instance that ran that
    long starts again after `first_delay`. An instance that exits `max_failed_starts` times in
    a row within `start_window` of its start, without its own process ever answering
    `/health`, failed at start: the launcher gives up."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0
    start_window: float = 30.0
    max_failed_starts: int = 5


@dataclass
class Restarts:
    """One instance's exits so far, under a policy."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    quick_exits: int = 0  # in a row, each before `stable_after`
    failed_starts: int = 0  # in a row, each within `start_window` and never healthy

    def healthy(self) -> None:
        """The instance's own process answered `/health`: it did not fail at start."""
        self.failed_starts = 0

    def exited(self, ran_for: float, was_healthy: bool) -> float | None:
        """The pause before the next start of an instance that exited after `ran_for`
        seconds; None: it failed at start too often, give up."""
        policy = self.policy
        self.quick_exits = self.quick_exits + 1 if ran_for < policy.stable_after else 1
        failed_at_start = not was_healthy and ran_for < policy.start_window
        self.failed_starts = self.failed_starts + 1 if failed_at_start else 0
        if self.failed_starts >= policy.max_failed_starts:
            return None
        return min(policy.max_delay, policy.first_delay * 2.0 ** (self.quick_exits - 1))


@dataclass(frozen=True)
class Started:
    """An instance's process started (it leads its own process group)."""

    name: str
    pid: int


@dataclass(frozen=True)
class Reaped:
    """An instance's process is gone: stopped, killed, or it exited by itself. `restart_in`:
    the seconds before the supervisor starts it again; None when nobody does."""

    name: str
    pid: int
    code: int
    restart_in: float | None = None


@dataclass(frozen=True)
class Restarting:
    """The supervisor starts an instance again, for the `restart`-th time."""

    name: str
    restart: int


Event = Started | Reaped | Restarting


class InstanceFailed(RuntimeError):
    """An instance exited while nobody restarts it, or did not answer `/health` in time."""


class GaveUp(RuntimeError):
    """An instance kept failing at start."""


@dataclass
class Instance:
    """One process of the stack: what it runs, on which port, and its restart bookkeeping."""

    name: str
    argv: tuple[str, ...]
    port: int
    settings: dict[str, str]  # its own environment, over the stack's
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_once: bool = False  # since its last start
    restarts: Restarts = field(default_factory=Restarts)
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


class Launcher:
    """Instances of one stack as child processes: started, watched, restarted, stopped."""

    def __init__(
        self,
        environment: Mapping[str, str],
        log_dir: Path,
        *,
        cwd: Path | None = None,
        policy: RestartPolicy | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        """`environment` is every instance's, under its own settings; `cwd` its working
        directory; with a `policy`, an instance that exits is started again by `tend()`;
        `on_event` hears of every start, exit and restart."""
        self._environment = dict(environment)
        self._log_dir = log_dir
        self._cwd = cwd
        self._policy = policy
        self._on_event = on_event or (lambda event: None)
        self.instances: dict[str, Instance] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def add(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Instance:
        """An instance running `argv` on `port` (a free one by default), not started yet."""
        if name in self.instances:
            raise ValueError(f"there is already an instance named {name!r}")
        restarts = Restarts(self._policy or RestartPolicy())
        port = port or free_port()
        instance = Instance(name, tuple(argv), port, dict(settings or {}), restarts=restarts)
        self.instances[name] = instance
        return instance

    def add_service(
        self,
        name: str,
        service: str,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Instance:
        """An instance of `service` (`python -m services.<service>`), told its port."""
        port = port or free_port()
        argv = (sys.executable, "-m", service_module(service))
        own = {port_variable(service): str(port), **(settings or {})}
        return self.add(name, argv, port=port, settings=own)

    def log_path(self, name: str) -> Path:
        return self._log_dir / f"{name}.log"

    def log_tail(self, name: str) -> str:
        return log_tail(self.log_path(name))

    def start(self, name: str) -> Instance:
        instance = self.instances[name]
        if instance.process is not None:
            raise RuntimeError(f"{name} is running already (pid {instance.process.pid})")
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                instance.argv,
                cwd=self._cwd,
                env={**self._environment, **instance.settings},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: no stray Ctrl-C; killpg reaches all
                preexec_fn=die_with_parent(),
            )
        register_cleanup(id(process), lambda: _terminate(process, STOP_GRACE))
        instance.process = process
        instance.started_at = time.monotonic()
        instance.healthy_once = False
        instance.restart_at = None
        self._on_event(Started(name, process.pid))
        return instance

    def start_all(self) -> None:
        for name, instance in self.instances.items():
            if instance.process is None:
                self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL to the instance's whole process group: no shutdown code runs."""
        instance = self.instances[name]
        process = instance.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self._reaped(instance)

    def stop_all(self) -> None:
        """SIGTERM to every running instance at once, SIGKILL to the groups of those still
        there after the grace; none is restarted any more."""
        running = [(i, i.process) for i in self.instances.values() if i.process is not None]
        for instance in self.instances.values():
            instance.restart_at = None
        for _, process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for instance, process in running:
            wait_or_kill_group(process, max(0.1, deadline - time.monotonic()))
            self._reaped(instance)

    def _reaped(self, instance: Instance, restart_in: float | None = None) -> None:
        process = instance.process
        assert process is not None and process.returncode is not None
        unregister_cleanup(id(process))
        instance.process = None
        instance.exit_codes.append(process.returncode)
        self._on_event(Reaped(instance.name, process.pid, process.returncode, restart_in))

    def answers(self, instance: Instance) -> bool:
        """Whether the instance answers `/health`: its own process, not whatever else listens
        on its port (another stack's service, say)."""
        pid = instance.pid
        if pid is None or not listens_on(pid, instance.port):
            return False
        try:
            return httpx.get(f"{instance.url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def tend(self, names: Iterable[str] | None = None) -> None:
        """Notice instances that exited (restarted after their pause under a policy, an
        `InstanceFailed` otherwise), start those whose pause is over, and note the first
        health of each start; of the named instances, all by default."""
        for instance in self._watch(names):
            if self.answers(instance):
                self._healthy(instance)

    def _named(self, names: Iterable[str] | None) -> list[Instance]:
        return (
            list(self.instances.values()) if names is None else [self.instances[n] for n in names]
        )

    def _watch(self, names: Iterable[str] | None) -> list[Instance]:
        """Exits and due restarts, as in `tend`; the running instances not yet healthy."""
        now = time.monotonic()
        unhealthy = []
        for instance in self._named(names):
            process = instance.process
            if process is not None and process.poll() is not None:
                self._exited(instance, now)
            if instance.process is None and instance.restart_at is not None:
                if now < instance.restart_at:
                    continue
                self._on_event(Restarting(instance.name, len(instance.exit_codes)))
                self.start(instance.name)
            if instance.process is not None and not instance.healthy_once:
                unhealthy.append(instance)
        return unhealthy

    def _exited(self, instance: Instance, now: float) -> None:
        if self._policy is None:
            self._reaped(instance)
            raise InstanceFailed(
                f"{instance.name} exited with code {instance.exit_codes[-1]}:\n"
                f"{self.log_tail(instance.name)}"
            )
        delay = instance.restarts.exited(now - instance.started_at, instance.healthy_once)
        self._reaped(instance, restart_in=delay)
        if delay is None:
            failed = instance.restarts.failed_starts
            raise GaveUp(
                f"{instance.name} failed at start {failed} times in a row"
                f" (exit codes {instance.exit_codes[-failed:]});"
                f" see its log in {self.log_path(instance.name)}"
            )
        instance.restart_at = now + delay

    def _healthy(self, instance: Instance) -> None:
        instance.healthy_once = True
        instance.restarts.healthy()

    def _pending(self, names: Iterable[str] | None) -> list[Instance]:
        """The named instances not healthy since their start; an error for one not started."""
        pending = [instance for instance in self._named(names) if not instance.healthy_once]
        for instance in pending:
            if instance.process is None and instance.restart_at is None:
                raise InstanceFailed(f"{instance.name} is not started")
        return pending

    def _not_healthy(self, pending: list[Instance], timeout: float) -> InstanceFailed:
        tails = "".join(f"\n--- {i.name}:\n{self.log_tail(i.name)}" for i in pending)
        names = ", ".join(i.name for i in pending)
        return InstanceFailed(f"not healthy after {timeout:.0f} s: {names}{tails}")

    def wait_healthy(
        self, names: Iterable[str] | None = None, timeout: float = HEALTH_TIMEOUT
    ) -> None:
        """Until every named instance (all by default) answers `/health`, tending them
        meanwhile."""
        names = None if names is None else list(names)
        deadline = time.monotonic() + timeout
        while pending := self._pending(names):
            if time.monotonic() > deadline:
                raise self._not_healthy(pending, timeout)
            time.sleep(POLL)
            self.tend(names)

    async def wait_healthy_async(
        self, names: Iterable[str] | None = None, timeout: float = HEALTH_TIMEOUT
    ) -> None:
        """`wait_healthy` for a caller inside an event loop: the health checks run in a
        thread, so the loop keeps serving the caller's other tasks."""
        names = None if names is None else list(names)
        deadline = time.monotonic() + timeout
        while pending := self._pending(names):
            if time.monotonic() > deadline:
                raise self._not_healthy(pending, timeout)
            await asyncio.sleep(POLL)
            for instance in self._watch(names):
                if await asyncio.to_thread(self.answers, instance):
                    self._healthy(instance)


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to `process`, then SIGKILL to its group after `grace`: the `atexit` net."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    wait_or_kill_group(process, grace)
