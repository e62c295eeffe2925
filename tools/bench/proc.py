"""Process accounting from /proc: memory of a process tree, CPU the bench's own processes use,
and CPU everything else on the machine takes meanwhile (a shared machine's noise, reported
beside each measurement rather than guessed at).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _after_comm(stat: str) -> list[str]:
    """The fields of a `/proc/<pid>/stat` line after the command name, which may hold spaces
    and parentheses: field 3 (state) comes first."""
    return stat[stat.rindex(")") + 2 :].split()


def parse_ppid(stat: str) -> int:
    """The parent pid from a `/proc/<pid>/stat` line."""
    return int(_after_comm(stat)[1])


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime + cutime + cstime (fields 14 to 17) of a `/proc/<pid>/stat` line: the
    process's CPU and that of the children it reaped, in clock ticks."""
    fields = _after_comm(stat)
    return sum(int(value) for value in fields[11:15])


def parse_busy_ticks(proc_stat: str) -> int:
    """Ticks every CPU spent busy (all but idle and iowait), from `/proc/stat`'s `cpu` line."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:9]]
            return sum(values) - values[3] - values[4]
    raise ValueError("no cpu line in /proc/stat")


def parse_rss_kib(status: str) -> int:
    """`VmRSS` from a `/proc/<pid>/status` text, in KiB (0 when absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def parse_pss_kib(smaps_rollup: str) -> int | None:
    """`Pss` from a `/proc/<pid>/smaps_rollup` text, in KiB: the process's share of its pages
    (a page shared by n processes counts 1/n), so a tree's sum counts shared pages once."""
    for line in smaps_rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def descendants(roots: Iterable[int]) -> set[int]:
    """The roots and every process below them."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _read(entry / "stat")) is not None:
            children.setdefault(parse_ppid(stat), []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def tree_memory_kib(root: int) -> tuple[int, int]:
    """Summed RSS and summed PSS of `root` and its descendants (PSS falls back to RSS where
    smaps_rollup cannot be read)."""
    rss_total = pss_total = 0
    for pid in descendants([root]):
        status = _read(PROC / str(pid) / "status")
        if status is None:
            continue
        rss = parse_rss_kib(status)
        rollup = _read(PROC / str(pid) / "smaps_rollup")
        pss = parse_pss_kib(rollup) if rollup else None
        rss_total += rss
        pss_total += rss if pss is None else pss
    return rss_total, pss_total


def cpu_ticks(pids: Iterable[int]) -> dict[int, int]:
    return {
        pid: parse_cpu_ticks(stat)
        for pid in pids
        if (stat := _read(PROC / str(pid) / "stat")) is not None
    }


def busy_ticks() -> int:
    return parse_busy_ticks((PROC / "stat").read_text())


class CpuWindow:
    """CPU over a measurement, in cores: `ours` for the bench's process trees (`roots`: this
    process, the PostgreSQL server), `foreign` for everything else on the machine."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self.ours = 0.0
        self.foreign = 0.0
        self.per_pid: dict[int, float] = {}  # cores, each of our processes

    def __enter__(self) -> CpuWindow:
        self._started = time.monotonic()
        self._busy = busy_ticks()
        self._ticks = cpu_ticks(descendants(self.roots))
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = max(time.monotonic() - self._started, 1e-6)
        ticks = cpu_ticks(descendants(self.roots))
        used = {pid: max(0, n - self._ticks.get(pid, 0)) for pid, n in ticks.items()}
        ours = sum(used.values())
        busy = busy_ticks() - self._busy
        self.per_pid = {pid: n / CLK_TCK / seconds for pid, n in used.items() if n}
        self.ours = ours / CLK_TCK / seconds
        self.foreign = max(0, busy - ours) / CLK_TCK / seconds


def breakdown(per_pid: dict[int, float], groups: dict[str, int]) -> dict[str, float]:
    """Cores per named process tree (`groups`: name to root pid); what no group claims goes to
    `rest` (the harness, wrk)."""
    found: dict[str, float] = {}
    claimed: set[int] = set()
    for name, root in groups.items():
        tree = descendants([root]) & per_pid.keys()
        claimed |= tree
        found[name] = round(sum(per_pid[pid] for pid in tree), 3)
    found["rest"] = round(sum(c for pid, c in per_pid.items() if pid not in claimed), 3)
    return found


def wait_idle(
    roots: Iterable[int], *, below: float = 0.15, window: float = 1.0, timeout: float = 120.0
) -> float:
    """Wait until the trees under `roots` use less than `below` cores over `window` seconds
    (consumers and relays done with a burst); the seconds waited."""
    started = time.monotonic()
    while True:
        with CpuWindow(roots) as cpu:
            time.sleep(window)
        if cpu.ours < below or time.monotonic() - started > timeout:
            return time.monotonic() - started


class PeakSampler:
    """Samples a process tree's memory every `interval` seconds until stopped; keeps the peaks
    of its summed RSS and summed PSS."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = tree_memory_kib(self.pid)
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """Names measurements and keeps the foreign CPU (cores) seen during each."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self.foreign: dict[str, float] = {}

    def window(self, name: str) -> CpuWindow:
        return _Named(self, name)

    def wait_idle(self) -> float:
        return wait_idle(self.roots)


class _Named(CpuWindow):
    def __init__(self, meter: CpuMeter, name: str) -> None:
        super().__init__(meter.roots)
        self._meter, self._name = meter, name

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._meter.foreign[self._name] = round(self.foreign, 3)


def postmaster_pid(pgdata: Path | None) -> int | None:
    """The PostgreSQL server's pid from its data directory (it is not our child)."""
    if pgdata is None:
        return None
    text = _read(pgdata / "postmaster.pid")
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None
