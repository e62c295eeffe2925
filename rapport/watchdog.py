"""A watchdog that outlives `rapport dev` only to clean up after it.

`rapport dev` starts it with the read end of a pipe as its standard input and keeps the write
end to itself. Through the pipe it names what it started: `group PID` (a child's process
group) and `postgres PGDATA` (an embedded PostgreSQL). When `rapport dev` ends, however it
ends (SIGKILL included), the kernel closes the pipe: the watchdog reads end-of-file and stops
everything named, unless `rapport dev` said `bye` first (a clean stop already did it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

GRACE_SECONDS = 5.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _postmaster(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_everything(groups: list[int], pgdata: list[Path]) -> None:
    """SIGTERM every group and a fast shutdown of every PostgreSQL; SIGKILL what remains."""
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    masters = [pid for pid in (_postmaster(path) for path in pgdata) if pid is not None]
    for pid in masters:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        if not any(_group_alive(g) for g in groups) and not any(_alive(p) for p in masters):
            return
        time.sleep(0.1)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for pid in masters:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown


def main() -> None:
    """Read instructions until end-of-file, then clean up unless told `bye`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for `rapport dev`
    groups: list[int] = []
    pgdata: list[Path] = []
    said_bye = False
    for line in sys.stdin:
        word, _, argument = line.strip().partition(" ")
        if word == "group" and argument.isdigit():
            groups.append(int(argument))
        elif word == "forget" and argument.isdigit():
            groups = [group for group in groups if group != int(argument)]
        elif word == "postgres" and argument:
            pgdata.append(Path(argument))
        elif word == "bye":
            said_bye = True
    if not said_bye:
        stop_everything(groups, pgdata)


if __name__ == "__main__":
    main()
