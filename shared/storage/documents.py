"""The `documents` table: the one place its SQL is written. Projections' documents are loaded
and written here (one statement each for a whole round), read by the services through the
`Documents` port (`StoredDocuments`), and digested for audits."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg
import orjson

from shared.model.envelope import canonical_json
from shared.model.projections import Document, Projection
from shared.storage.db import checked_schema
from shared.storage.eventstore import EventStore
from shared.usecases.ports import Found

__all__ = [
    "DocumentKey",
    "StoredDocuments",
    "copy_documents",
    "create_documents_like",
    "digest",
    "find_documents_sql",
    "fold_as_of",
    "load_document",
    "load_documents",
    "read_view",
    "write_documents",
]

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")

DocumentKey = tuple[str, str]
"""A document's projection and id."""

# A round's documents, of every projection it folds: one load, one write.
_LOAD_MANY_SQL = (
    "SELECT d.projection, d.id, d.doc, d.version FROM documents d"
    " JOIN unnest($1::text[], $2::text[]) AS k(projection, id)"
    " ON d.projection = k.projection AND d.id = k.id"
    " ORDER BY d.projection, d.id FOR UPDATE OF d"
)
_WRITE_MANY_SQL = (
    "INSERT INTO documents (projection, id, doc, version, updated_at)"
    " SELECT d.projection, d.id, d.doc, d.version, now()"
    " FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::integer[])"
    " AS d(projection, id, doc, version)"
    " ON CONFLICT (projection, id) DO UPDATE"
    " SET doc = EXCLUDED.doc, version = EXCLUDED.version, updated_at = now()"
)


def _field(name: str) -> str:
    if not _FIELD.match(name):
        raise ValueError(f"invalid document field {name!r}")
    return name


def _json(document: Document) -> str:
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS).decode()


async def load_document(
    conn: asyncpg.Connection, projection: str, key: str, *, for_update: bool = False
) -> tuple[Document, int] | None:
    """A projection's document and the stream version folded into it, or None."""
    row = await conn.fetchrow(
        "SELECT doc, version FROM documents WHERE projection = $1 AND id = $2"
        + (" FOR UPDATE" if for_update else ""),
        projection,
        key,
    )
    if row is None:
        return None
    return orjson.loads(row["doc"]), int(row["version"])


async def load_documents(
    conn: asyncpg.Connection, wanted: Sequence[DocumentKey]
) -> dict[DocumentKey, tuple[Document, int]]:
    """The documents that exist among `wanted`, locked till commit in one order (projection,
    then id), each with the version folded into it."""
    ordered = sorted(set(wanted))
    rows = await conn.fetch(_LOAD_MANY_SQL, [p for p, _ in ordered], [k for _, k in ordered])
    return {
        (row["projection"], row["id"]): (orjson.loads(row["doc"]), int(row["version"]))
        for row in rows
    }


async def write_documents(
    conn: asyncpg.Connection, changed: Sequence[tuple[DocumentKey, Document, int]]
) -> None:
    """Write (insert or replace) documents with their folded versions, in one statement."""
    if changed:
        await conn.execute(
            _WRITE_MANY_SQL,
            [projection for (projection, _), _, _ in changed],
            [key for (_, key), _, _ in changed],
            [_json(document) for _, document, _ in changed],
            [version for _, _, version in changed],
        )


async def copy_documents(
    conn: asyncpg.Connection,
    schema: str,
    documents: Mapping[DocumentKey, Document],
    versions: Mapping[DocumentKey, int],
    updated_at: datetime,
) -> int:
    """Load documents, none of which is there yet, with their folded versions into
    `<schema>.documents`, with one COPY; returns how many."""
    records = [
        (projection, key, _json(document), versions[(projection, key)], updated_at)
        for (projection, key), document in documents.items()
    ]
    await conn.copy_records_to_table(
        "documents",
        schema_name=checked_schema(schema),
        records=records,
        columns=["projection", "id", "doc", "version", "updated_at"],
    )
    return len(records)


async def create_documents_like(conn: asyncpg.Connection, target: str, source: str) -> None:
    """An empty `<target>.documents` made like `<source>.documents` (its indexes too)."""
    await conn.execute(
        f"CREATE TABLE {checked_schema(target)}.documents"
        f" (LIKE {checked_schema(source)}.documents INCLUDING ALL)"
    )


async def fold_as_of(
    store: EventStore, projection: Projection, stream_id: str, as_of: datetime | None
) -> tuple[Document, int] | None:
    """A stream's document as it stood at `as_of`, folded from the log (streamed)."""
    document: Document | None = None
    version = 0
    async with store.snapshot() as conn:
        async for envelope in store.read_stream(conn, stream_id, until=as_of):
            if projection.key(envelope) is not None:
                document = projection.apply(document, envelope) or document
                version = envelope.stream_version
    return None if document is None else (document, version)


async def read_view(
    store: EventStore, projection: Projection, stream_id: str, *, as_of: datetime | None = None
) -> tuple[Document, int] | None:
    """A stream's view: the live document, or, for a stream the runner has not reached yet
    (its first commit a moment ago) or for `as_of`, the fold of its log. None: no stream."""
    if as_of is None:
        async with store.pool.acquire() as conn:
            found = await load_document(conn, projection.name, stream_id)
        if found is not None:
            return found
    return await fold_as_of(store, projection, stream_id, as_of)


async def digest(conn: asyncpg.Connection, projection: str) -> tuple[str, int]:
    """SHA-256 over the projection's documents in id order, and how many there are."""
    sha = hashlib.sha256()
    count = 0
    async for row in conn.cursor(
        "SELECT id, doc, version FROM documents WHERE projection = $1 ORDER BY id", projection
    ):
        sha.update(canonical_json([row["id"], orjson.loads(row["doc"]), row["version"]]))
        sha.update(b"\n")
        count += 1
    return sha.hexdigest(), count


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
    """The projections' documents of one service's schema (the `Documents` port)."""

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
