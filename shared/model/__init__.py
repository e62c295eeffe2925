"""The event model: envelopes and their hash chain, domain events and commands, errors, time, and
the pure folds of projections. No I/O."""

from shared.model.clock import (
    Clock,
    FixedClock,
    SystemClock,
)
from shared.model.envelope import (
    GENESIS_HASH,
    SYSTEM_ACTOR,
    Actor,
    Envelope,
    canonical_json,
    compute_hash,
    format_time,
    new_id,
    parse_time,
    seal,
)
from shared.model.errors import (
    DomainError,
    ForbiddenByState,
    InvalidCommand,
    NotFound,
)
from shared.model.event_schemas import (
    DIALECT,
    EventSchemas,
    InvalidEventData,
    Published,
    PublishedSchema,
    SnapshotComparison,
    asyncapi_messages,
    compare_snapshot,
    data_schema,
    published_schemas,
)
from shared.model.events import (
    PERSONAL_SCHEMA_KEY,
    Command,
    DomainEvent,
    EventRegistry,
    OptionalPersonalStr,
    PersonalStr,
    UnknownEventType,
    dump_protected,
    personal_fields_of,
)
from shared.model.log import (
    EMPTY,
    ConcurrencyConflict,
    EventMetadata,
    Head,
    chained,
)
from shared.model.projections import (
    Document,
    Projection,
    fold_stream,
)
from shared.model.schema_compatibility import (
    breaking_changes,
)

__all__ = [
    "DIALECT",
    "EMPTY",
    "GENESIS_HASH",
    "PERSONAL_SCHEMA_KEY",
    "SYSTEM_ACTOR",
    "Actor",
    "Clock",
    "Command",
    "ConcurrencyConflict",
    "Document",
    "DomainError",
    "DomainEvent",
    "Envelope",
    "EventMetadata",
    "EventRegistry",
    "EventSchemas",
    "FixedClock",
    "ForbiddenByState",
    "Head",
    "InvalidCommand",
    "InvalidEventData",
    "NotFound",
    "OptionalPersonalStr",
    "PersonalStr",
    "Projection",
    "Published",
    "PublishedSchema",
    "SnapshotComparison",
    "SystemClock",
    "UnknownEventType",
    "asyncapi_messages",
    "breaking_changes",
    "canonical_json",
    "chained",
    "compare_snapshot",
    "compute_hash",
    "data_schema",
    "dump_protected",
    "fold_stream",
    "format_time",
    "new_id",
    "parse_time",
    "personal_fields_of",
    "published_schemas",
    "seal",
]
