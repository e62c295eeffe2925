"""Where a service spends its time under load: py-spy samples (`--profile`), summed up.

py-spy's raw output is one collapsed stack per line (`frame;frame;... count`); the summary is
the share of samples each frame appears in (inclusive) and is on top of (self), leaving out
the trunk every sample shares (the interpreter's entry, the event loop's run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Share:
    frame: str
    inclusive: float  # share of samples with this frame anywhere on the stack
    own: float  # share of samples with this frame on top


def py_spy() -> str | None:
    """py-spy beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(binary: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample `pid` for `seconds` without pausing it; collapsed stacks into `out`."""
    return subprocess.Popen(
        [
            binary,
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "100",
            "--duration",
            str(max(1, round(seconds))),
            "--output",
            str(out),
            "--pid",
            str(pid),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def short(frame: str) -> str:
    """`handle (shared/usecases/commands.py:120)` → `handle (shared/usecases/commands.py)`;
    library paths are cut to the package: `execute (asyncpg/connection.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    marker = f"site-packages{os.sep}"
    if marker in path:
        path = path.split(marker, 1)[1]
    for root in ("shared/", "services/", "rapport/"):
        if f"/{root}" in path:
            path = root + path.split(f"/{root}", 1)[1]
    return f"{name} ({path})" if path else name


def summarize(collapsed: str, top: int = 25) -> list[Share]:
    """The frames most present in the samples, by inclusive share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short(frame) for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    # The trunk (interpreter entry, event loop) is under nearly every complete stack; py-spy
    # also returns stacks cut short (a coroutine without its loop), so measure it by the
    # most common frame rather than by the total.
    widest = max(inclusive.values(), default=0)
    trunk = {frame for frame, n in inclusive.items() if n >= 0.98 * widest}
    ranked = [(frame, n) for frame, n in inclusive.most_common() if frame not in trunk]
    return [Share(frame, n / total, own[frame] / total) for frame, n in ranked[:top]]
