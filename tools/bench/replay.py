"""The log-wide measures: generating a log of N engagement events, replaying it (events/s with
peak RSS), and relaying part of it to the broker. Each runs as a child of the measured tree.

While the replay runs, the harness samples the memory of the child and every process below
it, so a replay that fans out to worker processes is counted whole: summed PSS (a page shared
by forked workers counts once), with summed RSS beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tools.bench.proc import PeakSampler
from tools.bench.stack import Stack


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
    peak_mb: float  # the replay's memory: its process tree's summed PSS at its peak (judged)
    peak_rss_sum_mb: float  # the same tree's summed RSS (counts shared pages in each process)
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
        peak_mb=max(sampler.peak_pss_kib / 1024, own, children),
        peak_rss_sum_mb=max(sampler.peak_rss_kib / 1024, own, children),
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
