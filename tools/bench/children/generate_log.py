"""Child: generate a realistic engagement log of exactly N events into `engagement.events`.

Usage: generate_log.py DSN EVENTS [--workers W] [--seed S]

Engagements are played by the measured tree's own pure domain (`decide` / `evolve`): opened,
then homework assigned, claimed and verified, sessions, boundary violations and their
resolution, reviews, relationship check-ins (where the domain has them), transformation,
self-checks and regressions, graduation, follow-ups, testimonials, terminations. Personal
fields carry fake tokens shaped like the store's ciphertexts (the replay does not decrypt).

Envelopes follow the contract's canonical JSON. The JSON text is assembled here (the top
level in sorted key order, `data` through `json.dumps`), which is several times cheaper than
going through the envelope model, and a sample of envelopes is checked against
`shared.model.envelope.seal` so the fast path cannot drift from the project's rule.

Workers generate chunks of interleaved engagements (each chunk's events in time order, as a
busy platform writes them); the parent COPYs each chunk in its own transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import heapq
import json
import multiprocessing
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.engagement.domain import commands as c
from services.engagement.domain.engagement import decide, evolve, initial
from shared.model.envelope import canonical_json, seal
from shared.storage.bulk import analyze_events, copy_events_text
from shared.storage.db import migrate

MARK = "BENCH-RESULT "
SCHEMA = "engagement"
MIGRATIONS = "services.engagement.adapters.migrations"
GENESIS = "0" * 64
STREAMS_PER_CHUNK = 200
MEAN_STREAM = 200
CHECK_EVERY = 997  # one envelope in this many is rebuilt with `seal` and compared
FACTORS = (
    "empathy",
    "active_listening",
    "non_judgment",
    "confidentiality",
    "collaboration",
    "boundaries",
)
KINDS = (
    "role_overstep",
    "inappropriate_disclosure",
    "confidentiality_breach",
    "outside_agreed_contact",
    "power_imbalance",
    "other",
)
# Where the measured tree has relationship check-ins, they are part of the mix.
CHECK_IN: Any = getattr(c, "RecordRelationshipCheckIn", None)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    events: int
    seed: int
    base: datetime


class Stream:
    """One engagement being played: its state, its head, and the rows written so far."""

    def __init__(self, rng: random.Random, coach_id: str, start: datetime) -> None:
        self.rng = rng
        self.engagement_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.client_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.coach_id = coach_id
        self.at = start
        self.state: Any = initial()
        self.version = 0
        self.prev_hash = GENESIS
        self.rows: list[tuple[datetime, int, str]] = []
        self.open_homework: list[str] = []
        self.claimed_homework: list[str] = []
        self.open_violations: list[str] = []
        self.follow_ups = 0
        self.testimonial = False
        self.low: set[str] = set()  # factors the client currently rates low
        self.checked = 0

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, text: str) -> str:
        """A fake ciphertext token of the client's key, as long as a real one."""
        raw = self.rng.randbytes(len(text.encode()) + 28)
        return f"enc:v1:{self.client_id}:{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"

    def play(self, command: Any, role: str, actor_id: str, causation: str | None = None) -> bool:
        """Decide and record; False when the domain refuses the command."""
        try:
            events = decide(self.state, command)
        except Exception:  # a DomainError: the state forbids it, try something else
            return False
        correlation = self.new_id()
        occurred = _time(self.at)
        recorded = _time(self.at + timedelta(milliseconds=self.rng.randint(1, 40)))
        actor = _dumps({"id": actor_id, "role": role})
        for event in events:
            self.state = evolve(self.state, event)
            self.version += 1
            self._record(event, occurred, recorded, actor, correlation, causation, role, actor_id)
        return True

    def _record(
        self,
        event: Any,
        occurred: str,
        recorded: str,
        actor: str,
        correlation: str,
        causation: str | None,
        role: str,
        actor_id: str,
    ) -> None:
        data = event.model_dump(mode="json")
        event_id = self.new_id()
        head = (
            f'{{"actor":{actor},"causation_id":{_dumps(causation)},'
            f'"correlation_id":"{correlation}","data":{_dumps(data)},'
            f'"event_id":"{event_id}","event_type":{_dumps(event.event_type)}'
        )
        tail = (
            f',"occurred_at":"{occurred}","prev_hash":"{self.prev_hash}",'
            f'"producer":"engagement","recorded_at":"{recorded}",'
            f'"schema_version":{int(event.schema_version)},"stream_id":"{self.engagement_id}",'
            f'"stream_version":{self.version}}}'
        )
        digest = hashlib.sha256((head + tail).encode()).hexdigest()
        envelope = f'{head},"hash":"{digest}"{tail}'
        if self.version == 1 or self.rng.randrange(CHECK_EVERY) == 0:
            self._check(envelope, digest)
        row = "\t".join(
            (
                event_id,
                self.engagement_id,
                str(self.version),
                event.event_type,
                str(event.schema_version),
                occurred,
                envelope.replace("\\", "\\\\"),
                digest,
            )
        )
        self.rows.append((self.at, self.version, row))
        self.prev_hash = digest

    @staticmethod
    def _check(envelope: str, digest: str) -> None:
        """The fast path must agree with the project's `seal` and canonical JSON."""
        body = json.loads(envelope)
        del body["hash"]
        sealed = seal(body)
        if sealed.hash != digest or canonical_json(sealed.model_dump(mode="json")) != (
            envelope.encode()
        ):
            raise AssertionError(f"generated envelope differs from seal(): {envelope[:200]}")

    def coach(self, command: Any) -> bool:
        return self.play(command, "coach", self.coach_id)

    def client(self, command: Any) -> bool:
        return self.play(command, "client", self.client_id)

    def step(self) -> bool:
        """Advance time and play one plausible command; False once the engagement is over."""
        rng, at = self.rng, self.at + timedelta(minutes=self.rng.randint(60, 4 * 24 * 60))
        self.at = at
        stage = self.state.stage
        if stage in ("graduated", "terminated"):
            return stage == "graduated" and self._after_graduation()
        if rng.random() < 0.0015:
            reason = rng.choice(["mutual", "client_withdrew", "other"])
            notes = self.token("Ended by agreement")
            self.coach(c.TerminateEngagement(reason=reason, notes=notes, at=at))
            return True
        choice = rng.random()
        if stage == "commitment":
            if choice < 0.5:
                self.coach(c.StartPlan(at=at))
            else:
                self._assign()
        elif choice < 0.22:
            self._assign()
        elif choice < 0.40:
            self._claim()
        elif choice < 0.56:
            self._verify()
        elif choice < 0.70:
            notes = self.token("Reviewed progress on the main goal and next steps")
            minutes = rng.choice([30, 45, 60, 90])
            self.coach(
                c.HoldSession(
                    session_id=self.new_id(),
                    held_at=at,
                    duration_minutes=minutes,
                    notes=notes,
                    at=at,
                )
            )
        elif choice < 0.80:
            if CHECK_IN is not None:  # a quiet step where the domain has no check-ins
                self._check_in()
        elif choice < 0.88:
            self._boundaries(choice)
        else:
            self._progress(stage, choice)
        return True

    def _after_graduation(self) -> bool:
        """Two follow-ups and a testimonial, then the engagement is over."""
        if self.follow_ups < 2:
            self.follow_ups += 1
            scores = {
                "wellbeing": float(self.rng.randint(5, 10)),
                "goal": float(self.rng.randint(5, 10)),
            }
            notes = self.token("Keeps the routine, sleeps better")
            self.coach(
                c.CompleteFollowUp(
                    follow_up_id=self.new_id(), scores=scores, notes=notes, at=self.at
                )
            )
            return True
        if not self.testimonial:
            self.testimonial = True
            text = self.token("Working with my coach changed how I plan my weeks.")
            self.client(
                c.ReceiveTestimonial(
                    testimonial_id=self.new_id(), text=text, consent_to_publish=True, at=self.at
                )
            )
            return True
        return False

    def _claim(self) -> None:
        if self.open_homework:
            homework_id = self.open_homework.pop(self.rng.randrange(len(self.open_homework)))
            note = self.token("Done, see my notes")
            if self.client(c.ClaimHomework(homework_id=homework_id, note=note, at=self.at)):
                self.claimed_homework.append(homework_id)

    def _verify(self) -> None:
        if self.claimed_homework:
            outcome = "confirmed" if self.rng.random() < 0.8 else "refuted"
            evidence = self.token("Checked the journal together")
            self.coach(
                c.VerifyHomework(
                    homework_id=self.claimed_homework.pop(0),
                    outcome=outcome,
                    evidence=evidence,
                    at=self.at,
                )
            )

    def _boundaries(self, choice: float) -> None:
        """Violations reported (3%), addressed (3%), boundaries reviewed (2%)."""
        if choice < 0.83:
            violation_id = self.new_id()
            reported = c.ReportViolation(
                violation_id=violation_id,
                violated_by=self.rng.choice(["coach", "client"]),
                kind=self.rng.choice(KINDS),
                description=self.token("Contacted outside the agreed hours"),
                reported_by=self.coach_id,
                at=self.at,
            )
            if self.coach(reported):
                self.open_violations.append(violation_id)
        elif choice < 0.86:
            if self.open_violations:
                steps = self.token("Talked it through, agreed on contact hours")
                violation_id = self.open_violations.pop(0)
                self.coach(c.AddressViolation(violation_id=violation_id, steps=steps, at=self.at))
        else:
            self.coach(c.ReviewBoundaries(notes=self.token("Boundaries reviewed"), at=self.at))

    def _progress(self, stage: str, choice: float) -> None:
        """Transformation, self-checks (some not on track: a regression), graduation."""
        if stage == "working_the_plan" and choice < 0.91 and self.state.sessions_held >= 6:
            summary = self.token("The new routine holds without reminders")
            self.coach(c.AchieveTransformation(summary=summary, at=self.at))
        elif stage == "transformation" and choice < 0.96:
            self.client(
                c.RecordSelfCheck(
                    on_track=self.rng.random() < 0.85,
                    notes=self.token("Mostly on track this week"),
                    recorded_by=self.client_id,
                    at=self.at,
                )
            )
        elif stage == "transformation":
            cadence = (self.state.session_cadence_days or 7) + 14
            self.coach(c.StartGraduation(session_cadence_days=cadence, at=self.at))
        elif stage == "graduation" and choice < 0.95:
            self.coach(c.Graduate(at=self.at))

    def _assign(self) -> None:
        homework_id = self.new_id()
        command = c.AssignHomework(
            homework_id=homework_id,
            title=self.token("Write down three wins every evening"),
            due_at=self.at + timedelta(days=7),
            at=self.at,
        )
        if self.coach(command):
            self.open_homework.append(homework_id)

    def _check_in(self) -> None:
        rng = self.rng
        rater = "client" if rng.random() < 0.6 else "coach"
        if rater == "client":
            if rng.random() < 0.08:
                self.low.add(rng.choice(FACTORS))
            elif self.low and rng.random() < 0.4:
                self.low.discard(rng.choice(sorted(self.low)))
        ratings = {
            factor: rng.randint(1, 2)
            if rater == "client" and factor in self.low
            else rng.randint(3, 5)
            for factor in FACTORS
        }
        command = CHECK_IN(
            checkin_id=self.new_id(),
            rater=rater,
            ratings=ratings,
            comment=self.token("Felt heard today"),
            at=self.at,
        )
        self.play(command, rater, self.client_id if rater == "client" else self.coach_id)

    def open(self, length: int) -> None:
        """Play the engagement from its opening until `length` events or its end."""
        goals = [
            {
                "goal_id": self.new_id(),
                "title": self.token("Run a 10k"),
                "measure": self.token("minutes"),
                "baseline": 70.0,
                "target": 55.0,
                "target_date": None,
            }
        ]
        baselines = [
            {
                "assessment_id": self.new_id(),
                "instrument": "PHQ-9",
                "scores": {"total": float(self.rng.randint(3, 20))},
                "notes": None,
            }
        ]
        command = c.OpenEngagement(
            engagement_id=self.engagement_id,
            client_id=self.client_id,
            coach_id=self.coach_id,
            supervisor_id=f"supervisor-{self.rng.randrange(50)}",
            session_cadence_days=self.rng.choice([7, 14]),
            goals=goals,
            baselines=baselines,
            at=self.at,
        )
        if not self.play(command, "coach", self.coach_id, causation=self.new_id()):
            raise AssertionError("the domain refused to open an engagement")
        idle = 0  # steps in a row that wrote nothing
        while self.version < length and idle < 200:
            before = self.version
            if not self.step():
                break
            idle = idle + 1 if self.version == before else 0


def generate_chunk(spec: ChunkSpec) -> bytes:
    """COPY text rows of one chunk: about STREAMS_PER_CHUNK engagements, interleaved by time."""
    rng = random.Random(spec.seed * 1_000_003 + spec.index)
    budget = spec.events
    streams: list[list[tuple[datetime, int, str]]] = []
    while budget > 0:
        start = spec.base + timedelta(minutes=rng.randint(0, 180 * 24 * 60))
        stream = Stream(rng, f"coach-{rng.randrange(1000)}", start)
        stream.open(min(budget, rng.randint(MEAN_STREAM // 5, MEAN_STREAM * 9 // 5)))
        rows = stream.rows[:budget]
        streams.append(rows)
        budget -= len(rows)
    merged = heapq.merge(*streams, key=lambda row: row[0])
    return "".join(row + "\n" for _, _, row in merged).encode()


def chunk_specs(events: int, seed: int) -> list[ChunkSpec]:
    per_chunk = STREAMS_PER_CHUNK * MEAN_STREAM
    count = max(1, -(-events // per_chunk))
    base = datetime(2024, 1, 1, tzinfo=UTC)
    sizes = [events // count + (1 if i < events % count else 0) for i in range(count)]
    return [ChunkSpec(i, size, seed, base + timedelta(days=30 * i)) for i, size in enumerate(sizes)]


async def write(dsn: str, chunks: Iterator[bytes]) -> tuple[int, int]:
    """Migrate the schema, COPY every chunk in its own transaction; (events, bytes)."""
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=2, server_settings={"search_path": SCHEMA}
    )
    assert pool is not None
    loop = asyncio.get_running_loop()
    events = size = 0
    try:
        await migrate(pool, SCHEMA, [MIGRATIONS])
        async with pool.acquire() as conn:
            while (chunk := await loop.run_in_executor(None, next, chunks, None)) is not None:
                await copy_events_text(conn, chunk, schema=SCHEMA)
                events += chunk.count(b"\n")
                size += len(chunk)
            # A log at rest, as autovacuum leaves a table after a bulk insert (hint bits set,
            # visibility map written): else its insert-triggered pass races the replay.
            await analyze_events(conn, SCHEMA, vacuum=True)
    finally:
        await pool.close()
    return events, size


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("events", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    specs = chunk_specs(args.events, args.seed)
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool:
        chunks: Iterator[bytes] = pool.imap(generate_chunk, specs)
        events, size = asyncio.run(write(args.dsn, chunks))
    result = {
        "events": events,
        "bytes": size,
        "chunks": len(specs),
        "check_ins": CHECK_IN is not None,
        "seconds": time.perf_counter() - started,
    }
    print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
