"""Child: time `shared.reads.audit.replay` of the `engagement` log with every engagement projection.

Usage: replay_log.py DSN

Start-up (imports, interpreter) is excluded: the clock starts just before the call and stops
at its return; the rate is over the events the replay reports. Peak RSS is this process's
(`ru_maxrss`) and that of any process the replay waited for.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from services.engagement.projections import PROJECTIONS
from shared.reads.audit import replay

MARK = "BENCH-RESULT "


def quiet_logs() -> None:
    """Warnings only, as `rapport audit replay` runs."""
    try:
        from shared.runtime.logs import configure_logging
    except ImportError:  # pragma: no cover - a tree without it logs at its default
        return
    configure_logging("warning")


async def timed(dsn: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = await replay(dsn, "engagement", PROJECTIONS)
    seconds = time.perf_counter() - started
    return {
        "events": int(result.events),
        "seconds": seconds,
        "projections": [
            {"name": d.projection, "documents": d.documents, "digest": d.digest}
            for d in result.digests
        ],
    }


def main(argv: list[str]) -> None:
    quiet_logs()
    found = asyncio.run(timed(argv[0]))
    found["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found["children_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(MARK + json.dumps(found), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
