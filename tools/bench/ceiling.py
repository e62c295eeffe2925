"""The HTTP ceiling: the least a Python command service can do per command here.

A minimal FastAPI + uvicorn + asyncpg app: `POST /v1/engagements/{id}/homework` parses the
same body as Rapport's route and does one INSERT into a table of the same PostgreSQL, through
a pool sized like the services'. Its rate under the same wrk load is the denominator of
Rapport's command rate.

It runs as its own process and imports only third-party packages, so any tree can be
measured beside it: `python -P tools/bench/ceiling.py` with `BENCH_CEILING_DSN`,
`BENCH_CEILING_PORT` and `BENCH_CEILING_POOL` set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_ceiling (id bigint GENERATED ALWAYS AS IDENTITY"
    " PRIMARY KEY, engagement_id text NOT NULL, title text NOT NULL,"
    " due_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
INSERT_SQL = (
    "INSERT INTO bench_ceiling (engagement_id, title, due_at) VALUES ($1, $2, $3) RETURNING id"
)


class AssignHomework(BaseModel):
    title: str
    due_at: datetime


def create_app(dsn: str, pool_size: int) -> FastAPI:
    """The ceiling app: one INSERT per POST."""
    pools: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size)
        assert pool is not None
        await pool.execute(TABLE_SQL)
        pools["main"] = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/engagements/{engagement_id}/homework", status_code=201)
    async def assign(engagement_id: str, body: AssignHomework) -> dict[str, Any]:
        row_id = await pools["main"].fetchval(INSERT_SQL, engagement_id, body.title, body.due_at)
        return {"homework_id": str(row_id), "stream_version": row_id}

    return app


def main() -> None:
    """Serve the app as the services serve theirs (`uvicorn.run`, warnings only)."""
    app = create_app(os.environ["BENCH_CEILING_DSN"], int(os.environ["BENCH_CEILING_POOL"]))
    port = int(os.environ["BENCH_CEILING_PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
