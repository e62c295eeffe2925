"""`make bench` (`python -m rapport.bench`): the judge of issue 10, on this machine.

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
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapport.bench import database, journey
from rapport.bench import replay as log_bench
from rapport.bench.report import CommandRun, Results, Steady, StreamCost, show, write_json
from rapport.bench.stack import SERVICES, Stack
from rapport.bench.wrk import HOMEWORK_BODY, Target, WrkMissing, WrkRun, ensure_wrk, lua_script
from rapport.infra import install_signal_handlers, running_infrastructure

REPOSITORY = Path(__file__).resolve().parents[2]
PHASES = ("http", "replay")
PROBES, FRESH = 4, 5  # engagements kept out of wrk's rotation


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rapport.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--project", type=Path, default=REPOSITORY, help="tree to measure")
    parser.add_argument("--label", default=None, help="name the measured tree in the report")
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
    parser.add_argument("--ceiling-pool", type=int, default=10, help="the services' pool size")
    parser.add_argument("--skip", choices=PHASES, action="append", default=[])
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
        "commit": git(project, "rev-parse", "HEAD") or "unknown",
        "dirty": bool(git(project, "status", "--porcelain", "--untracked-files=no")),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": log_bench.cpu_count(),
        "python": platform.python_version(),
        "engagements": args.engagements,
        "seconds": args.seconds,
        "wrk_threads": args.threads,
        "ceiling_pool": args.ceiling_pool,
    }


def say(text: str) -> None:
    print(f"[{datetime.now().astimezone():%H:%M:%S}] {text}", flush=True)


def start_stack(stack: Stack, ceiling_pool: int) -> None:
    for service in SERVICES:
        stack.start_service(service)
    stack.start_ceiling(ceiling_pool)

    async def healthy() -> None:
        await asyncio.gather(*(stack.wait_healthy(name) for name in (*SERVICES, "ceiling")))

    asyncio.run(healthy())


def throttled(
    stack: Stack,
    targets: list[Target],
    wrk: str,
    args: argparse.Namespace,
    connections: int,
    rate: float,
) -> WrkRun:
    """wrk throttled to `rate` with its `delay()` hook. A connection's cycle is its delay plus
    the request's own time, so a short calibration run measures that time and the delay is
    shortened by it."""
    script = stack.workdir / "homework-steady.lua"
    run = WrkRun(
        wrk, stack.url("engagement"), script, threads=args.threads, log=stack.workdir / "wrk.log"
    )
    delay_ms = 1000 * connections / rate
    script.write_text(lua_script(targets, HOMEWORK_BODY, delay_ms=delay_ms))
    calibration = run.run(connections, max(4.0, args.warmup + 2))
    if calibration.rate > 0:
        request_ms = max(0.0, 1000 * connections / calibration.rate - delay_ms)
        delay_ms = max(1.0, delay_ms - request_ms)
        script.write_text(lua_script(targets, HOMEWORK_BODY, delay_ms=delay_ms))
    return run


def measure_http(stack: Stack, args: argparse.Namespace, results: Results, wrk: str) -> None:
    """Steps 1-5: the HTTP figures and raw asyncpg, with the services running."""
    say("starting the services and the ceiling app")
    start_stack(stack, args.ceiling_pool)
    api = stack.url("engagement")
    total = args.engagements + PROBES + FRESH + 1
    say(f"preparing {total} engagements through the intake journey")
    prepared = asyncio.run(
        journey.prepare_engagements(stack.url("intake"), api, stack.jwt_secret, total)
    )
    loaded = prepared[: args.engagements]
    probes = prepared[args.engagements : args.engagements + PROBES]
    fresh = prepared[args.engagements + PROBES : -1]
    grown = prepared[-1]

    targets = [Target(e.homework_path, e.token) for e in loaded]
    script = stack.workdir / "homework.lua"
    script.write_text(lua_script(targets, HOMEWORK_BODY))
    log = stack.workdir / "wrk.log"
    rapport = WrkRun(wrk, api, script, threads=args.threads, log=log)
    ceiling = WrkRun(wrk, stack.url("ceiling"), script, threads=args.threads, log=log)

    def settle() -> float:
        return asyncio.run(journey.settle(api, probes[0]))

    catch_up = 0.0
    for connections in args.connections:
        say(f"HTTP ceiling at {connections} connections")
        ceiling.run(connections, args.warmup)
        ceiling_before = ceiling.run(connections, args.seconds)
        say(f"commands at {connections} connections")
        rapport.run(connections, args.warmup)
        rapport_result = rapport.run(connections, args.seconds)
        say(f"  {rapport_result.rate:,.0f}/s; waiting for the projections to catch up")
        results.meta[f"connections_after_{connections}"] = asyncio.run(
            database.connections_by_application(stack.database_url)
        )
        catch_up = settle()
        say(f"HTTP ceiling at {connections} connections again")
        ceiling_after = ceiling.run(connections, args.seconds)
        run = CommandRun(connections, rapport_result, (ceiling_before, ceiling_after))
        results.runs.append(run)
        say(f"  ceiling {ceiling_before.rate:,.0f}/s and {ceiling_after.rate:,.0f}/s")

    top = results.run(32) or results.runs[-1]
    target_rate = max(1.0, top.rapport.rate / 2)
    say(f"steady load at {target_rate:,.0f}/s with the stage-view lag probe")
    steady = throttled(stack, targets, wrk, args, top.connections, target_rate)
    background = steady.start(top.connections, 3600)
    try:
        time.sleep(args.warmup)
        lags = asyncio.run(journey.probe_lag(api, probes, samples=args.lag_samples))
    finally:
        load = steady.stop(background, top.connections)
    results.steady = Steady(target_rate, load, lags, catch_up)
    settle()

    say(f"command cost: fresh streams against one of {args.grown:,} events")
    asyncio.run(journey.warm(api, fresh, 9))
    asyncio.run(journey.warm(api, [grown], 1))
    stack.run_child(
        "grow_stream.py", stack.database_url, grown.engagement_id, str(args.grown), grown.coach_id
    )
    asyncio.run(journey.wait_version(api, grown, args.grown))
    settle()
    fresh_length = asyncio.run(journey.stage_version(api, fresh[0]))
    fresh_ms, grown_ms = asyncio.run(
        journey.interleaved_commands(api, fresh, grown, args.cost_rounds)
    )
    results.stream_cost = StreamCost(fresh_ms, grown_ms, fresh_length, args.grown)

    say("raw asyncpg single-row transactions")
    results.raw_tx_per_s = asyncio.run(database.single_row_transactions(stack.database_url))
    stack.stop_all()


def measure_log(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    """Step 6: generate the log, replay it, relay part of it."""
    dsn = asyncio.run(database.create_database(stack.database_url, "bench_log"))
    say(f"generating a log of {args.events:,} engagement events")
    results.generated = log_bench.generate(stack, dsn, args.events, args.workers)
    say(f"  {results.generated.events:,} events in {results.generated.seconds:.0f} s; replaying")
    results.replayed = log_bench.replay(stack, dsn)
    say(f"  {results.replayed.rate:,.0f} events/s; relaying {args.relay_events:,} events")
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
            stack_of.callback(_remove, workdir)
        endpoints = stack_of.enter_context(running_infrastructure(workdir))
        stack = Stack(args.project, workdir, endpoints.database_url, endpoints.kafka_bootstrap)
        stack_of.callback(stack.stop_all)
        if "http" not in args.skip:
            measure_http(stack, args, results, wrk)
        if "replay" not in args.skip:
            measure_log(stack, args, results)
        if args.keep:
            say(f"kept {workdir}")
    show(results)
    write_json(args.out, results)
    say(f"wrote {args.out}")
    return 0


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
