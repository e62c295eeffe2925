"""What a bench run found: the figures, the targets of issue 10 beside them, a rich table and
`bench.json`."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.bench.profile import Share
from tools.bench.replay import Generated, Relayed, Replayed
from tools.bench.wrk import WrkResult


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile (0 < p <= 100) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CommandRun:
    """Rapport's commands and the ceiling app under the same wrk load. The ceiling runs just
    before and just after Rapport; the better run counts (a neighbour's burst only ever
    lowers a rate), both are kept."""

    connections: int
    rapport: WrkResult
    ceilings: tuple[WrkResult, ...]

    @property
    def ceiling(self) -> WrkResult:
        return max(self.ceilings, key=lambda run: run.rate)

    @property
    def ratio(self) -> float:
        return self.rapport.rate / self.ceiling.rate if self.ceiling.rate else math.nan


@dataclass(frozen=True)
class Steady:
    """Stage-view lag under a throttled load at half the 32-connection maximum."""

    target_rate: float
    load: WrkResult
    lags_ms: list[float]
    catch_up_after_burst_s: float

    @property
    def p50_ms(self) -> float:
        return percentile(self.lags_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.lags_ms, 99)


@dataclass(frozen=True)
class StreamCost:
    """Sequential command latencies on fresh streams and on one grown long."""

    fresh_ms: list[float]
    grown_ms: list[float]
    fresh_length: int
    grown_length: int

    @property
    def fresh_p50_ms(self) -> float:
        return percentile(self.fresh_ms, 50)

    @property
    def grown_p50_ms(self) -> float:
        return percentile(self.grown_ms, 50)

    @property
    def ratio(self) -> float:
        return self.grown_p50_ms / self.fresh_p50_ms if self.fresh_ms else math.nan


@dataclass
class Results:
    """Every figure of one run; sections stay None when skipped."""

    meta: dict[str, Any]
    runs: list[CommandRun] = field(default_factory=list)
    steady: Steady | None = None
    stream_cost: StreamCost | None = None
    raw_tx_per_s: list[float] = field(default_factory=list)  # at the start and at the end
    generated: Generated | None = None
    replayed: Replayed | None = None
    relayed: Relayed | None = None
    foreign_cpu: dict[str, float] = field(default_factory=dict)  # cores, per measurement
    idle_cpu_cores: float | None = None  # the stack at rest
    cpu_by_process: dict[str, dict[str, float]] = field(default_factory=dict)  # cores
    profiles: dict[str, list[Share]] = field(default_factory=dict)  # per service, with --profile

    @property
    def raw_best(self) -> float | None:
        return max(self.raw_tx_per_s, default=None)

    def run(self, connections: int) -> CommandRun | None:
        return next((r for r in self.runs if r.connections == connections), None)


@dataclass(frozen=True)
class Check:
    """One target of issue 10 item 2 and how this run did."""

    name: str
    target: str
    value: float | None
    passed: bool | None  # None: not measured in this run
    digits: int = 0  # how the value is shown


def _check(
    name: str, target: str, value: float | None, ok: Callable[[float], bool], digits: int = 0
) -> Check:
    if value is None or math.isnan(value):
        return Check(name, target, None, None, digits)
    return Check(name, target, value, ok(value), digits)


def evaluate(results: Results) -> list[Check]:
    """The targets on this machine (2 cores, everything on it; the ratios are what count)."""
    run = results.run(32)
    steady, cost, replayed = results.steady, results.stream_cost, results.replayed
    return [
        _check(
            "commands @32 / HTTP ceiling",
            ">= 0.4x (aim 0.6x)",
            run.ratio if run else None,
            lambda v: v >= 0.4,
            2,
        ),
        _check(
            "commands @32 p99 ms", "<= 150", run.rapport.p99_ms if run else None, lambda v: v <= 150
        ),
        _check(
            "commands @32 errors", "0", float(run.rapport.errors) if run else None, lambda v: v == 0
        ),
        _check(
            "stage-view lag p99 ms (half load)",
            "<= 100",
            steady.p99_ms if steady else None,
            lambda v: v <= 100,
        ),
        _check(
            "replay events/s",
            ">= 50,000 (aim 150,000)",
            replayed.rate if replayed else None,
            lambda v: v >= 50_000,
        ),
        _check(
            "replay peak memory MB (PSS, all its processes)",
            "< 300",
            replayed.peak_mb if replayed else None,
            lambda v: v < 300,
        ),
        _check(
            "relay events/s",
            ">= 20,000",
            results.relayed.rate if results.relayed else None,
            lambda v: v >= 20_000,
        ),
        _check(
            "command p50 @3,000 events / fresh",
            "<= 1.5x",
            cost.ratio if cost else None,
            lambda v: v <= 1.5,
            2,
        ),
    ]


def _wrk_json(result: WrkResult) -> dict[str, Any]:
    return {**dataclasses.asdict(result), "errors": result.errors}


def to_json(results: Results) -> dict[str, Any]:
    """Every figure, JSON-ready."""
    steady, cost = results.steady, results.stream_cost
    return {
        "meta": results.meta,
        "commands": {
            str(run.connections): {
                "rapport": _wrk_json(run.rapport),
                "ceiling": _wrk_json(run.ceiling),
                "ceiling_runs": [_wrk_json(c) for c in run.ceilings],
                "ratio_to_ceiling": run.ratio,
            }
            for run in results.runs
        },
        "raw_asyncpg_tx_per_s": results.raw_best,
        "raw_asyncpg_runs": results.raw_tx_per_s,
        "stage_view_lag": None
        if steady is None
        else {
            "target_rate": steady.target_rate,
            "load": _wrk_json(steady.load),
            "samples": len(steady.lags_ms),
            "p50_ms": steady.p50_ms,
            "p99_ms": steady.p99_ms,
            "max_ms": max(steady.lags_ms, default=math.nan),
            "catch_up_after_burst_s": steady.catch_up_after_burst_s,
        },
        "stream_cost": None
        if cost is None
        else {
            "fresh_length": cost.fresh_length,
            "grown_length": cost.grown_length,
            "samples": len(cost.grown_ms),
            "fresh_p50_ms": cost.fresh_p50_ms,
            "grown_p50_ms": cost.grown_p50_ms,
            "ratio": cost.ratio,
        },
        "generated_log": dataclasses.asdict(results.generated) if results.generated else None,
        "replay": dataclasses.asdict(results.replayed) if results.replayed else None,
        "relay": dataclasses.asdict(results.relayed) if results.relayed else None,
        "idle_cpu_cores": results.idle_cpu_cores,
        "cpu_by_process_cores": results.cpu_by_process,
        "profiles": {
            name: [dataclasses.asdict(share) for share in shares]
            for name, shares in results.profiles.items()
        },
        "foreign_cpu_cores": results.foreign_cpu,
        "targets": [dataclasses.asdict(check) for check in evaluate(results)],
    }


def write_json(path: Path, results: Results) -> None:
    """`bench.json`: NaN (a figure that could not be computed) is written as null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(to_json(results)), indent=2) + "\n")


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _served(split: dict[str, float]) -> float:
    """Cores of the system under test: everything but the harness and wrk (`rest`)."""
    return sum(v for k, v in split.items() if k != "rest")


def _cpu_rows(out: Table, results: Results) -> None:
    """Where the CPU went during each full-load run, and CPU per request against the
    ceiling's."""
    for run in results.runs:
        mine = results.cpu_by_process.get(f"commands@{run.connections}")
        if not mine or not run.rapport.rate:
            continue
        busy = {k: v for k, v in mine.items() if v >= 0.02}
        out.add_row(
            f"CPU during commands @{run.connections} (cores)",
            ", ".join(f"{k} {v:.2f}" for k, v in busy.items()),
        )
        theirs = [
            1000 * _served(split) / ceiling.rate
            for n, ceiling in enumerate(run.ceilings, 1)
            if (split := results.cpu_by_process.get(f"ceiling@{run.connections} ({n})"))
            and ceiling.rate
        ]
        out.add_row(
            f"CPU ms per request @{run.connections}: commands (engagement) / ceiling",
            f"{1000 * _served(mine) / run.rapport.rate:.2f}"
            f" ({1000 * mine.get('engagement', 0.0) / run.rapport.rate:.2f})"
            f" / {min(theirs, default=math.nan):.2f}",
        )


def table(results: Results) -> Table:
    """The figures of the run, then the targets."""
    meta = results.meta
    out = Table(
        title=f"Rapport bench — {meta.get('project')} @ {meta.get('commit', '?')[:10]}"
        f"{' (dirty)' if meta.get('dirty') else ''}",
        caption=f"{meta.get('cpus')} CPUs; wrk {meta.get('wrk_threads')} threads,"
        f" {meta.get('seconds')} s per run; {meta.get('engagements')} engagements",
    )
    out.add_column("measure", no_wrap=True)
    out.add_column("value", justify="right")
    out.add_column("target", justify="right")
    out.add_column("", justify="center")
    for run in results.runs:
        r, c = run.rapport, run.ceiling
        out.add_row(
            f"commands @{run.connections}: rate /s, p50 / p99 ms, non-2xx",
            f"{_n(r.rate)}  {_n(r.p50_ms, 1)} / {_n(r.p99_ms, 1)}  {r.non_2xx + r.socket_errors}",
        )
        out.add_row(
            f"HTTP ceiling @{run.connections}: rate /s, p50 / p99 ms",
            f"{_n(c.rate)}  {_n(c.p50_ms, 1)} / {_n(c.p99_ms, 1)}",
        )
        out.add_row(
            f"  ceiling runs before / after Rapport's @{run.connections}",
            " / ".join(_n(each.rate) for each in run.ceilings),
        )
        out.add_row(f"commands / ceiling @{run.connections}", f"{_n(run.ratio, 2)}x")
    raw = results.raw_best
    if raw is not None:
        out.add_row(
            "raw asyncpg single-row transactions /s (runs)",
            f"{_n(raw)}  ({' / '.join(_n(each) for each in results.raw_tx_per_s)})",
        )
        top = results.run(32)
        if top is not None:
            out.add_row("commands @32 / raw asyncpg", f"{_n(top.rapport.rate / raw, 3)}x")
    if results.steady is not None:
        s = results.steady
        out.add_row(
            "half load: target / achieved rate /s", f"{_n(s.target_rate)} / {_n(s.load.rate)}"
        )
        out.add_row(
            f"stage-view lag p50 / p99 ms ({len(s.lags_ms)} samples)",
            f"{_n(s.p50_ms, 1)} / {_n(s.p99_ms, 1)}",
        )
        out.add_row(
            "stack settled after the @32 burst (views caught up, idle), s",
            _n(s.catch_up_after_burst_s, 1),
        )
    if results.stream_cost is not None:
        sc = results.stream_cost
        out.add_row(
            f"command p50 ms: ~{sc.fresh_length} events / {sc.grown_length:,} events",
            f"{_n(sc.fresh_p50_ms, 1)} / {_n(sc.grown_p50_ms, 1)}  ({_n(sc.ratio, 2)}x)",
        )
    if results.generated is not None:
        g = results.generated
        out.add_row(
            "generated log: events, MB, s", f"{g.events:,}  {_n(g.megabytes)}  {_n(g.seconds, 1)}"
        )
    if results.replayed is not None:
        rp = results.replayed
        out.add_row("replay: events, s", f"{rp.events:,}  {_n(rp.seconds, 1)}")
        out.add_row("replay events/s", _n(rp.rate))
        out.add_row(
            "replay peak MB: PSS sum / RSS sum / largest process",
            f"{_n(rp.peak_mb)} / {_n(rp.peak_rss_sum_mb)} /"
            f" {_n(max(rp.process_maxrss_mb, rp.children_maxrss_mb))}",
        )
    if results.relayed is not None:
        rl = results.relayed
        out.add_row("relay to the broker: events, events/s", f"{rl.events:,}  {_n(rl.rate)}")
    _cpu_rows(out, results)
    if results.idle_cpu_cores is not None:
        out.add_row("the stack at rest: CPU (cores)", _n(results.idle_cpu_cores, 2))
    if results.foreign_cpu:
        name, worst = max(results.foreign_cpu.items(), key=lambda item: item[1])
        note = "" if worst < 0.25 else "  [yellow]noisy[/]"
        out.add_row(
            "other processes' CPU, worst measurement (cores)", f"{worst:.2f} ({name}){note}"
        )
    out.add_section()
    for check in evaluate(results):
        mark = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "-"}[check.passed]
        out.add_row(check.name, _n(check.value, check.digits), check.target, mark)
    return out


def profile_table(service: str, shares: list[Share], top: int = 15) -> Table:
    out = Table(title=f"{service}: where the samples were (py-spy, commands at full load)")
    out.add_column("frame")
    out.add_column("inclusive", justify="right")
    out.add_column("self", justify="right")
    for share in shares[:top]:
        out.add_row(share.frame, f"{share.inclusive:.0%}", f"{share.own:.0%}")
    return out


def show(results: Results) -> None:
    console = Console(width=140)
    for service, shares in results.profiles.items():
        console.print(profile_table(service, shares))
    console.print(table(results))
