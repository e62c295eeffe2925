"""The event envelope of the public contract (section 4) and its hash chain."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GENESIS_HASH",
    "SYSTEM_ACTOR",
    "Actor",
    "Envelope",
    "canonical_json",
    "compute_hash",
    "format_time",
    "new_id",
    "parse_time",
    "seal",
]

GENESIS_HASH = "0" * 64


class Actor(BaseModel):
    """Who caused an event: a role and that role's id."""

    model_config = ConfigDict(frozen=True, extra="forbid", cache_strings="keys")

    role: str
    id: str


SYSTEM_ACTOR = Actor(role="system", id="rapport")


def canonical_json(value: Any) -> bytes:
    """Keys sorted, separators `,` and `:`, UTF-8, no ASCII escaping."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`, so one instant has one spelling."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not allowed in events")
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime's own (unpadded) spelling of such years, as ever
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time into an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text!r}")
    return moment


def new_id() -> str:
    """A random (version 4) UUID, spelt as `str(uuid.uuid4())` spells it, in half the time."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


_JSON = "json"  # where a sealed envelope keeps its canonical JSON


class Envelope(BaseModel):
    """One stored or published event, exactly as contract section 4 spells it."""

    # Only keys are worth caching: ids and hashes are new strings in every envelope, and
    # caching them costs a parse a quarter of its time.
    model_config = ConfigDict(frozen=True, extra="forbid", cache_strings="keys")

    event_id: str
    event_type: str
    schema_version: int = Field(ge=1)
    stream_id: str
    stream_version: int = Field(ge=1)
    occurred_at: str
    recorded_at: str
    producer: str
    correlation_id: str
    causation_id: str | None
    actor: Actor
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def unhashed(self) -> dict[str, Any]:
        body = self.model_dump(mode="json")
        del body["hash"]
        return body

    def computed_hash(self) -> str:
        return compute_hash(self.unhashed())

    def is_intact(self) -> bool:
        return self.computed_hash() == self.hash

    @property
    def occurred(self) -> datetime:
        return parse_time(self.occurred_at)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; its JSON is spelled afresh (it may differ)."""
        copied = super().model_copy(update=update, deep=deep)
        object.__setattr__(copied, "__pydantic_private__", None)
        return copied

    def to_json(self) -> bytes:
        """The canonical JSON of the whole envelope (what is stored and published)."""
        kept = self.__pydantic_private__
        if kept:
            json_text: bytes = kept[_JSON]
            return json_text
        return canonical_json(self.model_dump(mode="json"))


def compute_hash(unhashed_envelope: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of the envelope without `hash`."""
    return hashlib.sha256(canonical_json(unhashed_envelope)).hexdigest()


def seal(unhashed_envelope: dict[str, Any]) -> Envelope:
    """Compute the hash of an envelope body and return the complete envelope."""
    whole = {**unhashed_envelope, "hash": compute_hash(unhashed_envelope)}
    envelope = Envelope.model_validate(whole)
    # The JSON just spelt for the hash is kept with the envelope, for its append. Not as a
    # declared private attribute: pydantic would set one up for every envelope parsed too,
    # which costs a replay about a tenth of its time.
    object.__setattr__(envelope, "__pydantic_private__", {_JSON: canonical_json(whole)})
    return envelope
