"""TCP ports `rapport dev` needs: whether each is free before anything starts, what holds one
that is not, and whether a given process is the one listening on a port."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from rapport.registry import port_variable

__all__ = ["BusyPort", "busy_ports", "holder_of", "listens_on"]


@dataclass(frozen=True)
class BusyPort:
    """A port a service is configured for but cannot listen on."""

    service: str
    port: int
    reason: str  # "in use by pid 4242 (python -m services.intake)", "also intake's port", ...

    def __str__(self) -> str:
        variable = port_variable(self.service)
        return f"port {self.port} ({self.service}, {variable}) is {self.reason}"


def busy_ports(host: str, wanted: Mapping[str, int]) -> list[BusyPort]:
    """The ports of `wanted` (service -> port) that the services could not listen on at `host`:
    taken by another process, not allowed, or given to two services."""
    busy: list[BusyPort] = []
    first_with: dict[int, str] = {}
    for service, port in wanted.items():
        if port in first_with:
            busy.append(BusyPort(service, port, f"also {first_with[port]}'s port"))
            continue
        first_with[port] = service
        error = _bind_error(host, port)
        if error is None:
            continue
        if error.errno == errno.EADDRINUSE:
            holder = holder_of(port)
            busy.append(BusyPort(service, port, f"in use by {holder or 'another process'}"))
        else:
            busy.append(BusyPort(service, port, f"not available: {error.strerror or error}"))
    return busy


def _bind_error(host: str, port: int) -> OSError | None:
    """Why a listener could not bind `host:port` (as uvicorn binds, with SO_REUSEADDR, so a
    closed connection still in TIME_WAIT does not count), or None when it could."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error
    return None


def holder_of(port: int) -> str | None:
    """`pid N (its command line)` of the process listening on `port`, when this user may see
    it; None otherwise."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.Error:
        return None
    for connection in connections:
        if _listening(connection, port) and connection.pid is not None:
            return f"pid {connection.pid} ({_command_line(connection.pid)})"
    return None


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` (or one of its children: a service's worker processes) has a
    socket listening on `port`."""
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return False
    for process in processes:
        try:
            if any(_listening(c, port) for c in process.net_connections(kind="inet")):
                return True
        except psutil.Error:
            continue
    return False


def _listening(connection: Any, port: int) -> bool:
    """Whether one of psutil's connection records is a socket listening on `port`."""
    return bool(
        connection.status == psutil.CONN_LISTEN
        and connection.laddr
        and connection.laddr.port == port
    )


def _command_line(pid: int) -> str:
    try:
        process = psutil.Process(pid)
        words = process.cmdline() or [process.name()]
    except psutil.Error:
        return "a process this user cannot inspect"
    line = " ".join(" ".join(words).split())
    return line if len(line) <= 120 else line[:119] + "…"
