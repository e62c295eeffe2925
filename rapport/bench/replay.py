"""The log-wide measures: generating a log of N engagement events, replaying it (events/s with
peak RSS), and relaying part of it to the broker. Each runs as a child of the measured tree.

While the replay runs, the harness samples the summed RSS of the child and every process
below it, so a replay that fans out to worker processes is counted whole.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from rapport.bench.stack import Stack

PROC = Path("/proc")


def parse_ppid(stat: str) -> int:
    """The parent pid from a `/proc/<pid>/stat` line (the command name may hold spaces and
    parentheses, so fields are counted after its last `)`)."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def parse_rss_kib(status: str) -> int:
    """`VmRSS` from a `/proc/<pid>/status` text, in KiB (0 when absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_rss_kib(root: int) -> int:
    """Summed RSS of `root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = parse_ppid((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += parse_rss_kib((PROC / str(pid) / "status").read_text())
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return total


class PeakSampler:
    """Samples a process tree's RSS every `interval` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Generated:
    events: int
    seconds: float
    megabytes: float
    check_ins: bool


@dataclass(frozen=True)
class Replayed:
    events: int
    seconds: float
    rate: float
    peak_rss_mb: float  # the replay process and its descendants, sampled
    process_maxrss_mb: float  # ru_maxrss of the replay process
    children_maxrss_mb: float  # ru_maxrss of the largest process it waited for
    projections: list[dict[str, object]]


@dataclass(frozen=True)
class Relayed:
    events: int
    seconds: float
    rate: float
    partitions: int


def _float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def generate(stack: Stack, dsn: str, events: int, workers: int) -> Generated:
    found = stack.run_child("generate_log.py", dsn, str(events), "--workers", str(workers))
    return Generated(
        events=int(_float(found["events"])),
        seconds=_float(found["seconds"]),
        megabytes=_float(found["bytes"]) / 1e6,
        check_ins=bool(found["check_ins"]),
    )


def replay(stack: Stack, dsn: str) -> Replayed:
    process = stack.child("replay_log.py", dsn)
    with PeakSampler(process.pid) as sampler:
        found = stack.child_result(process, "replay_log.py")
    events, seconds = int(_float(found["events"])), _float(found["seconds"])
    own = _float(found["maxrss_kib"]) / 1024
    children = _float(found["children_maxrss_kib"]) / 1024
    projections = found.get("projections")
    return Replayed(
        events=events,
        seconds=seconds,
        rate=events / seconds if seconds > 0 else 0.0,
        peak_rss_mb=max(sampler.peak_kib / 1024, own, children),
        process_maxrss_mb=own,
        children_maxrss_mb=children,
        projections=list(projections) if isinstance(projections, list) else [],
    )


def relay(stack: Stack, dsn: str, events: int, partitions: int) -> Relayed:
    found = stack.run_child(
        "relay_log.py", dsn, stack.kafka_bootstrap, str(events), "--partitions", str(partitions)
    )
    published, seconds = int(_float(found["events"])), _float(found["seconds"])
    return Relayed(
        events=published,
        seconds=seconds,
        rate=published / seconds if seconds > 0 else 0.0,
        partitions=partitions,
    )


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
