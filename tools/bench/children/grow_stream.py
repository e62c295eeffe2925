"""Child: grow one live engagement's stream to a given length, straight into its log.

Usage: grow_stream.py DSN STREAM_ID LENGTH COACH_ID

Appends `HomeworkAssigned` events (the domain's event, sealed with `shared.model.envelope.seal`,
chained on the stream's head) in one transaction, as the engagement service itself would
have written them, so a command on that stream meets a stream of LENGTH events. The engagement
must already be working the plan (one homework assigned through HTTP does that).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from services.engagement.domain.events import HomeworkAssigned
from shared.model.envelope import seal
from shared.storage.bulk import copy_envelopes
from shared.storage.eventstore import last_envelope

MARK = "BENCH-RESULT "


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def grow(dsn: str, stream_id: str, length: int, coach_id: str) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "engagement"})
    try:
        async with conn.transaction():
            last = await last_envelope(conn, stream_id)
            if last is None:
                raise SystemExit(f"no stream {stream_id}")
            version, prev_hash, producer = last.stream_version, last.hash, last.producer
            moment = datetime.now(UTC)
            envelopes = []
            while version < length:
                version += 1
                event = HomeworkAssigned(
                    homework_id=str(uuid.uuid4()),
                    title="enc:v1:bench:grown-stream-homework-title",
                    due_at=moment + timedelta(days=7),
                )
                envelope = seal(
                    {
                        "event_id": str(uuid.uuid4()),
                        "event_type": event.event_type,
                        "schema_version": event.schema_version,
                        "stream_id": stream_id,
                        "stream_version": version,
                        "occurred_at": _time(moment),
                        "recorded_at": _time(moment),
                        "producer": producer,
                        "correlation_id": str(uuid.uuid4()),
                        "causation_id": None,
                        "actor": {"role": "coach", "id": coach_id},
                        "data": event.model_dump(mode="json"),
                        "prev_hash": prev_hash,
                    }
                )
                prev_hash = envelope.hash
                envelopes.append(envelope)
            await copy_envelopes(conn, envelopes)
        return len(envelopes)
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    dsn, stream_id, length, coach_id = argv
    appended = asyncio.run(grow(dsn, stream_id, int(length), coach_id))
    print(MARK + json.dumps({"appended": appended, "length": int(length)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
