"""The bench's other pure helpers: /proc parsing, DSNs, percentiles and bench.json (no timing
is asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tools.bench.database import with_database
from tools.bench.proc import (
    parse_busy_ticks,
    parse_cpu_ticks,
    parse_ppid,
    parse_pss_kib,
    parse_rss_kib,
)
from tools.bench.profile import summarize
from tools.bench.report import Results, percentile, write_json


def test_the_parent_pid_is_found_even_when_the_command_name_has_spaces_and_parens() -> None:
    assert parse_ppid("4242 (python) S 17 4242 4242 0 -1") == 17
    assert parse_ppid("4242 (a (weird) name) R 99 1 1 0 -1") == 99


def test_cpu_ticks_of_a_process_count_its_own_and_its_reaped_childrens() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...
    stat = "7 (wrk worker) S 1 7 7 0 -1 4194560 10 0 0 0 150 25 7 3 20 0 2 0"
    assert parse_cpu_ticks(stat) == 150 + 25 + 7 + 3


def test_busy_ticks_leave_out_idle_and_iowait() -> None:
    proc_stat = "cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 50 2 25 500 20 1 1 0 0 0\n"
    assert parse_busy_ticks(proc_stat) == 100 + 5 + 50 + 3 + 2 + 1
    with pytest.raises(ValueError):
        parse_busy_ticks("intr 1 2 3\n")


def test_pss_is_read_from_smaps_rollup_in_kib() -> None:
    rollup = "560e-7fff ---p 00000000 00:00 0 [rollup]\nRss:  1768 kB\nPss:  201 kB\n"
    assert parse_pss_kib(rollup) == 201
    assert parse_pss_kib("Rss: 1 kB\n") is None


def test_rss_is_read_from_status_in_kib() -> None:
    status = "Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t4\n"
    assert parse_rss_kib(status) == 123456
    assert parse_rss_kib("Name:\tzombie\nState:\tZ (zombie)\n") == 0


def test_another_database_on_the_same_server_keeps_host_and_options() -> None:
    dsn = "postgresql://postgres:@/postgres?host=/tmp/rapport-x/pg"
    assert (
        with_database(dsn, "bench_log")
        == "postgresql://postgres:@/bench_log?host=/tmp/rapport-x/pg"
    )
    assert with_database("postgresql://u:p@h:5432/db", "other") == "postgresql://u:p@h:5432/other"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 50) == 2
    assert math.isnan(percentile([], 50))


def test_bench_json_of_a_run_that_measured_nothing_has_every_target_unmeasured(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bench.json"
    write_json(path, Results(meta={"project": "x"}))
    written = json.loads(path.read_text())
    assert written["commands"] == {}
    assert written["targets"]
    assert all(t["value"] is None and t["passed"] is None for t in written["targets"])


@pytest.mark.parametrize("p", [0.5, 50, 100])
def test_a_single_value_is_every_percentile(p: float) -> None:
    assert percentile([7.0], p) == 7.0


def test_collapsed_stacks_sum_up_by_frame_without_the_common_trunk() -> None:
    collapsed = "\n".join(
        [
            "<module> (/x/run.py:7);handle (/work/main/shared/usecases/commands.py:120);"
            "execute (/venv/lib/python3.11/site-packages/asyncpg/connection.py:350) 6",
            "<module> (/x/run.py:7);handle (/work/main/shared/usecases/commands.py:121) 3",
            "<module> (/x/run.py:7);encode (/usr/lib/python3.11/json/encoder.py:200) 1",
            "not a sample line",
        ]
    )
    shares = {share.frame: share for share in summarize(collapsed)}
    assert "<module> (/x/run.py)" not in shares  # in every sample
    assert shares["handle (shared/usecases/commands.py)"].inclusive == pytest.approx(0.9)
    assert shares["handle (shared/usecases/commands.py)"].own == pytest.approx(0.3)
    assert shares["execute (asyncpg/connection.py)"].own == pytest.approx(0.6)
    assert summarize("") == []
