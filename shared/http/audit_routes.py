"""`GET /v1/audit/streams/{stream_id}/events` (contract section 6), written once for every service.

Auditors and admins read a stream's envelopes exactly as stored, in version order: the body
embeds each stored envelope text verbatim, so a client can recompute every hash from the bytes
it received.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Protocol

import asyncpg
from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response

from shared.http.bearer import authenticated
from shared.http.schemas import PathId
from shared.model.errors import NotFound
from shared.security.tokens import PermissionDenied, Principal, TokenVerifier
from shared.storage.eventstore import stored_envelopes, stream_exists
from shared.usecases.access import reads_everything

__all__ = ["StoredLog", "audit_routes"]


class StoredLog(Protocol):
    """What the audit read needs of a service: a consistent read of its `events` table."""

    def snapshot(self) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


def audit_routes(
    app: FastAPI, log: Callable[[], StoredLog], tokens: Callable[[], TokenVerifier]
) -> None:
    """Attach the audit read of stored envelopes to a service's app; `log` gives the running
    service's event store."""
    caller = authenticated(tokens)

    @app.get(
        "/v1/audit/streams/{stream_id}/events",
        tags=["audit"],
        summary="The stored envelopes of one stream, in order (auditor, admin)",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "example": {"stream_id": "…", "version": 2, "items": [{}, {}]}
                    }
                }
            }
        },
    )
    async def stream_events(
        stream_id: PathId,
        after_version: Annotated[
            int, Query(ge=0, le=2**31 - 1, description="Only versions above this.")
        ] = 0,
        limit: Annotated[
            int,
            Query(ge=1, le=10_000, description="At most this many; page on with after_version."),
        ] = 1000,
        principal: Principal = Depends(caller),
    ) -> Response:
        if not reads_everything(principal):
            raise PermissionDenied("only auditors and admins read the raw log")
        async with log().snapshot() as conn:
            rows = await stored_envelopes(conn, stream_id, after_version, limit)
            if not rows and not await stream_exists(conn, stream_id):
                raise NotFound(f"no stream {stream_id}")
        version = rows[-1][0] if rows else after_version
        items = ",".join(envelope for _, envelope in rows)
        head = json.dumps({"stream_id": stream_id, "version": version})[:-1]
        return Response(f'{head},"items":[{items}]}}', media_type="application/json")
