"""Reads of the `documents` table, the one place the services' read queries are written
(`shared.usecases.ports.Documents` on PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from shared.storage.eventstore import EventStore
from shared.usecases.ports import Found
from shared.model.projections import Document, Projection, load_document, read_view

__all__ = ["StoredDocuments", "find_documents_sql"]

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")


def _field(name: str) -> str:
    if not _FIELD.match(name):
        raise ValueError(f"invalid document field {name!r}")
    return name


def find_documents_sql(where: Sequence[str], order_by: Sequence[str], *, limited: bool) -> str:
    """`SELECT id, doc, version` of one projection ($1), a field equal to each following
    parameter, ordered by the named fields then id, at most the last parameter if `limited`.
    Each filter is `doc->>'<field>' = $n`, which the `(projection, (doc->>'<field>'))` indexes
    serve."""
    conditions = [
        f"doc->>'{_field(name)}' = ${number}" for number, name in enumerate(where, start=2)
    ]
    order = [f"doc->>'{_field(name)}'" for name in order_by]
    return (
        "SELECT id, doc, version FROM documents WHERE "
        + " AND ".join(["projection = $1", *conditions])
        + " ORDER BY "
        + ", ".join([*order, "id"])
        + (f" LIMIT ${len(where) + 2}" if limited else "")
    )


class StoredDocuments:
    """The projections' documents of one service's schema."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def view(
        self, projection: Projection, stream_id: str, *, as_of: datetime | None = None
    ) -> tuple[Document, int] | None:
        return await read_view(self.store, projection, stream_id, as_of=as_of)

    async def get(self, projection: str, key: str) -> tuple[Document, int] | None:
        async with self.store.pool.acquire() as conn:
            return await load_document(conn, projection, key)

    async def find(
        self,
        projection: str,
        *,
        where: Mapping[str, str | None],
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Found]:
        filters = {name: value for name, value in where.items() if value is not None}
        query = find_documents_sql(list(filters), order_by, limited=limit is not None)
        arguments: list[object] = [projection, *filters.values()]
        if limit is not None:
            arguments.append(limit)
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(query, *arguments)
        return [Found(row["id"], orjson.loads(row["doc"]), int(row["version"])) for row in rows]
