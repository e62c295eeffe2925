"""`make bench` (`python -m tools.bench`): the judge of issue 10, on this machine.

On a fresh embedded PostgreSQL and tansu broker in a temporary directory, with the three
services of the measured tree (`--project`, this repository by default) as OS processes:

1. engagements prepared through the intake journey over HTTP;
2. homework commands driven by wrk at 8 and 32 connections, beside the HTTP ceiling (a
   minimal FastAPI + asyncpg app, one INSERT per POST) under the same load;
3. stage-view lag under a steady load at half the 32-connection maximum;
4. command cost on a fresh stream and on one of 3,000 events;
5. raw asyncpg single-row transactions per second;
6. a generated log of 1,000,000 engagement events replayed (events/s, peak RSS) and partly
   relayed to the broker.

It prints a table and writes `bench.json` with every figure and the targets beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapport.infra import install_signal_handlers, running_infrastructure
from rapport.registry import SERVICES
from shared.runtime.config import Settings
from tools.bench import database, journey, profile
from tools.bench import replay as log_bench
from tools.bench.journey import Engagement
from tools.bench.proc import CpuMeter, CpuWindow, breakdown, postmaster_pid
from tools.bench.report import CommandRun, Results, Steady, StreamCost, show, write_json
from tools.bench.stack import Stack
from tools.bench.wrk import HOMEWORK_BODY, Target, WrkMissing, WrkRun, ensure_wrk, lua_script

REPOSITORY = Path(__file__).resolve().parents[2]
PHASES = ("http", "replay")
BACKGROUND_INSTANCE = "engagement-background"
PROBES, FRESH = 4, 5  # engagements kept out of wrk's rotation


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--project", type=Path, default=REPOSITORY, help="tree to measure")
    parser.add_argument("--label", default=None, help="name the measured tree in the report")
    parser.add_argument("--commit", default=None, help="its commit, when it is not a git tree")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "bench.json")
    parser.add_argument("--engagements", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=12.0, help="each measured wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="before each wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--lag-samples", type=int, default=100)
    parser.add_argument("--grown", type=int, default=3000, help="events of the long stream")
    parser.add_argument("--cost-rounds", type=int, default=100)
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the log")
    parser.add_argument("--relay-events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=3, help="of the relay's topic")
    parser.add_argument("--workers", type=int, default=2, help="processes generating the log")
    parser.add_argument(
        "--ceiling-pool",
        type=int,
        default=Settings().db_pool_size,
        help="the ceiling app's pool size (default: the services' own, RAPPORT_DB_POOL_SIZE)",
    )
    parser.add_argument(
        "--engagement-workers",
        type=int,
        default=1,
        help="processes serving the engagement service (RAPPORT_WORKERS)",
    )
    parser.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="engagement as two instances: one serving HTTP (RAPPORT_BACKGROUND=false), one "
        "folding projections and relaying (default: one instance doing both)",
    )
    parser.add_argument("--skip", choices=PHASES, action="append", default=[])
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the services with py-spy during the last wrk run (perturbs it a little)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def git(project: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(project), *args], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() if completed.returncode == 0 else ""


def describe(args: argparse.Namespace) -> dict[str, Any]:
    project = args.project.resolve()
    return {
        "project": args.label or str(project),
        "path": str(project),
        "commit": args.commit or git(project, "rev-parse", "HEAD") or "unknown",
        "dirty": bool(git(project, "status", "--porcelain", "--untracked-files=no")),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": log_bench.cpu_count(),
        "python": platform.python_version(),
        "engagements": args.engagements,
        "seconds": args.seconds,
        "wrk_threads": args.threads,
        "ceiling_pool": args.ceiling_pool,
        "engagement_workers": args.engagement_workers,
        "engagement_split": args.split,
    }


def say(text: str) -> None:
    print(f"[{datetime.now().astimezone():%H:%M:%S}] {text}", flush=True)


def start_stack(stack: Stack, ceiling_pool: int, split: bool) -> None:
    names = [*SERVICES, "ceiling"]
    for service in SERVICES:
        if split and service == "engagement":  # HTTP here, background work beside it
            stack.start_service(service, env={"RAPPORT_BACKGROUND": "false"})
            stack.start_service(service, name=BACKGROUND_INSTANCE)
            names.append(BACKGROUND_INSTANCE)
        else:
            stack.start_service(service)
    stack.start_ceiling(ceiling_pool)
    stack.wait_healthy(*names)


@dataclass
class Bench:
    """One run's measurements, in the order `http` and `log` take them."""

    stack: Stack
    args: argparse.Namespace
    results: Results
    meter: CpuMeter
    wrk: str
    infra: dict[str, int]  # pids of the database and broker, for the CPU breakdown
    # Set by `prepare`:
    api: str = field(init=False)
    targets: list[Target] = field(init=False)  # wrk's rotation
    probes: list[Engagement] = field(init=False)  # the lag probe's, out of the rotation
    fresh: list[Engagement] = field(init=False)
    grown: Engagement = field(init=False)
    rapport: WrkRun = field(init=False)
    ceiling: WrkRun = field(init=False)
    catch_up: float = 0.0  # seconds the stack took to settle after the last burst

    def http(self) -> None:
        """Steps 1 to 5, with the services running."""
        say("starting the services and the ceiling app")
        start_stack(self.stack, self.args.ceiling_pool, self.args.split)
        self.raw_transactions()
        self.prepare()
        self.idle_cpu()
        for connections in self.args.connections:
            self.commands(connections)
        self.steady_lag()
        self.stream_cost()
        self.raw_transactions()
        self.stack.stop_all()

    def prepare(self) -> None:
        args, stack = self.args, self.stack
        self.api = stack.url("engagement")
        total = args.engagements + PROBES + FRESH + 1
        say(f"preparing {total} engagements through the intake journey")
        prepared = asyncio.run(
            journey.prepare_engagements(stack.url("intake"), self.api, stack.jwt_secret, total)
        )
        self.probes = prepared[args.engagements : args.engagements + PROBES]
        self.fresh = prepared[args.engagements + PROBES : -1]
        self.grown = prepared[-1]
        self.targets = [Target(e.homework_path, e.token) for e in prepared[: args.engagements]]
        script = stack.workdir / "homework.lua"
        script.write_text(lua_script(self.targets, HOMEWORK_BODY))
        log = stack.workdir / "wrk.log"
        self.rapport = WrkRun(self.wrk, self.api, script, threads=args.threads, log=log)
        self.ceiling = WrkRun(self.wrk, stack.url("ceiling"), script, threads=args.threads, log=log)
        self.catch_up = 0.0

    def idle_cpu(self) -> None:
        """What the stack costs doing nothing (polling, heartbeats), once it has settled."""
        self.settle()
        with CpuWindow(self.meter.roots) as cpu:
            time.sleep(5.0)
        self.results.idle_cpu_cores = cpu.ours

    def settle(self) -> float:
        """Until the projections have caught up and the services are idle again (consumers
        and relays done with what a burst left); the seconds it took."""
        started = time.monotonic()
        asyncio.run(journey.settle(self.api, self.probes[0]))
        self.meter.wait_idle()
        return time.monotonic() - started

    def commands(self, connections: int) -> None:
        """The ceiling, Rapport, then the ceiling again, at `connections`."""
        seconds, warmup = self.args.seconds, self.args.warmup
        say(f"HTTP ceiling at {connections} connections")
        self.ceiling.run(connections, warmup)
        with self.cpu(f"ceiling@{connections} (1)"):
            before = self.ceiling.run(connections, seconds)
        say(f"commands at {connections} connections")
        self.rapport.run(connections, warmup)
        profiling = self.args.profile and connections == self.args.connections[-1]
        with self.cpu(f"commands@{connections}"), self.profiled(profiling, seconds):
            rapport = self.rapport.run(connections, seconds)
        say(f"  {rapport.rate:,.0f}/s; waiting for the stack to catch up")
        self.results.meta[f"connections_after_{connections}"] = asyncio.run(
            database.connections_by_application(self.stack.database_url)
        )
        self.catch_up = self.settle()
        say(f"HTTP ceiling at {connections} connections again")
        with self.cpu(f"ceiling@{connections} (2)"):
            after = self.ceiling.run(connections, seconds)
        self.results.runs.append(CommandRun(connections, rapport, (before, after)))
        say(f"  ceiling {before.rate:,.0f}/s and {after.rate:,.0f}/s")

    @contextlib.contextmanager
    def cpu(self, name: str) -> Iterator[None]:
        """A measurement: the other processes' CPU meanwhile, and ours per process."""
        with self.meter.window(name) as window:
            yield
        groups = {**self.stack.pids(), **self.infra}
        self.results.cpu_by_process[name] = breakdown(window.per_pid, groups)

    @contextlib.contextmanager
    def profiled(self, wanted: bool, seconds: float) -> Iterator[None]:
        """py-spy on every service while the block runs; the summaries into the results."""
        binary = profile.py_spy() if wanted else None
        if wanted and binary is None:
            say("  py-spy not found: no profile (pip install py-spy)")
        if binary is None:
            yield
            return
        outputs = {name: self.stack.workdir / f"profile-{name}.txt" for name in SERVICES}
        pids = self.stack.pids()
        samplers = [
            profile.record(binary, pids[name], seconds - 1, out) for name, out in outputs.items()
        ]
        try:
            yield
        finally:
            for sampler in samplers:
                sampler.wait()
        self.results.meta["profiled"] = True
        for name, out in outputs.items():
            text = out.read_text() if out.exists() else ""
            self.results.profiles[name] = profile.summarize(text)

    def throttled(self, connections: int, rate: float) -> WrkRun:
        """wrk throttled to `rate` with its `delay()` hook. A connection's cycle is its delay
        plus the request's own time, so a short calibration run measures that time and the
        delay is shortened by it."""
        script = self.stack.workdir / "homework-steady.lua"
        run = WrkRun(self.wrk, self.api, script, threads=self.args.threads, log=self.rapport.log)
        delay_ms = 1000 * connections / rate
        script.write_text(lua_script(self.targets, HOMEWORK_BODY, delay_ms=delay_ms))
        calibration = run.run(connections, max(4.0, self.args.warmup + 2))
        if calibration.rate > 0:
            request_ms = max(0.0, 1000 * connections / calibration.rate - delay_ms)
            delay_ms = max(1.0, delay_ms - request_ms)
            script.write_text(lua_script(self.targets, HOMEWORK_BODY, delay_ms=delay_ms))
        return run

    def steady_lag(self) -> None:
        """Stage-view lag from the probe, under wrk throttled to half the top rate."""
        top = self.results.run(32) or self.results.runs[-1]
        rate = max(1.0, top.rapport.rate / 2)
        say(f"steady load at {rate:,.0f}/s with the stage-view lag probe")
        steady = self.throttled(top.connections, rate)
        background = steady.start(top.connections, 3600)
        try:
            time.sleep(self.args.warmup)
            with self.meter.window("stage-view lag"):
                lags = asyncio.run(
                    journey.probe_lag(self.api, self.probes, samples=self.args.lag_samples)
                )
        finally:
            load = steady.stop(background, top.connections)
        self.results.steady = Steady(rate, load, lags, self.catch_up)
        self.settle()

    def stream_cost(self) -> None:
        """Sequential commands, alternating between fresh streams and a grown one."""
        args, api, grown = self.args, self.api, self.grown
        say(f"command cost: fresh streams against one of {args.grown:,} events")
        asyncio.run(journey.warm(api, self.fresh, 9))
        asyncio.run(journey.warm(api, [grown], 1))  # starts the plan
        self.stack.run_child(
            "grow_stream.py",
            self.stack.database_url,
            grown.engagement_id,
            str(args.grown),
            grown.coach_id,
        )
        asyncio.run(journey.wait_version(api, grown, args.grown))
        self.settle()
        fresh_length = asyncio.run(journey.stage_version(api, self.fresh[0]))
        with self.meter.window("stream cost"):
            fresh_ms, grown_ms = asyncio.run(
                journey.interleaved_commands(api, self.fresh, grown, args.cost_rounds)
            )
        self.results.stream_cost = StreamCost(fresh_ms, grown_ms, fresh_length, args.grown)

    def raw_transactions(self) -> None:
        """Raw asyncpg on the same server (taken at the start and at the end)."""
        say("raw asyncpg single-row transactions")
        runs = self.results.raw_tx_per_s
        with self.meter.window(f"raw asyncpg ({len(runs) + 1})"):
            runs.append(asyncio.run(database.single_row_transactions(self.stack.database_url)))

    def log(self) -> None:
        """Step 6: generate the log, replay it, relay part of it."""
        args, stack, results = self.args, self.stack, self.results
        dsn = asyncio.run(database.create_database(stack.database_url, "bench_log"))
        say(f"generating a log of {args.events:,} engagement events")
        results.generated = log_bench.generate(stack, dsn, args.events, args.workers)
        say(f"  {results.generated.events:,} events in {results.generated.seconds:.0f} s")
        self.meter.wait_idle()
        say("replaying it")
        with self.meter.window("replay"):
            results.replayed = log_bench.replay(stack, dsn)
        say(f"  {results.replayed.rate:,.0f} events/s; relaying {args.relay_events:,} events")
        with self.meter.window("relay"):
            results.relayed = log_bench.relay(stack, dsn, args.relay_events, args.partitions)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.project = args.project.resolve()
    if not (args.project / "services" / "engagement").is_dir():
        print(f"error: {args.project} is not a Rapport tree", file=sys.stderr)
        return 2
    wrk = ""
    if "http" not in args.skip:
        try:
            wrk = ensure_wrk()
        except WrkMissing as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    for name in ("RAPPORT_DATABASE_URL", "RAPPORT_KAFKA_BOOTSTRAP"):
        os.environ.pop(name, None)  # always a fresh embedded PostgreSQL and broker
    install_signal_handlers()
    results = Results(meta=describe(args))
    say(f"measuring {results.meta['project']} at {results.meta['commit'][:10]}")
    with contextlib.ExitStack() as stack_of:
        workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        if not args.keep:
            stack_of.callback(shutil.rmtree, workdir, ignore_errors=True)
        endpoints = stack_of.enter_context(running_infrastructure(workdir))
        stack = Stack(args.project, workdir, endpoints.database_url, endpoints.kafka_bootstrap)
        stack.workers["engagement"] = args.engagement_workers
        stack_of.callback(stack.stop_all)
        postmaster = postmaster_pid(endpoints.pgdata)
        meter = CpuMeter([os.getpid(), postmaster or os.getpid()])
        infra = {"postgres": postmaster, "tansu": endpoints.broker_pid}
        known = {name: pid for name, pid in infra.items() if pid is not None}
        bench = Bench(stack, args, results, meter, wrk, known)
        try:
            if "http" not in args.skip:
                bench.http()
            if "replay" not in args.skip:
                bench.log()
        finally:  # what was measured is shown and kept, even when a step failed
            results.foreign_cpu = meter.foreign
            show(results)
            write_json(args.out, results)
            say(f"wrote {args.out}" + (f"; kept {workdir}" if args.keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
