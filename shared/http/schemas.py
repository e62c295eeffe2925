"""Request building blocks shared by the services' HTTP edges: ids, texts, times, and the base
of every request body."""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "EMAIL_PATTERN",
    "ID_PATTERN",
    "PATTERN_MESSAGES",
    "CommandAccepted",
    "Email",
    "Id",
    "LongText",
    "Number",
    "PathId",
    "RequestBody",
    "Rfc3339Time",
    "Scores",
    "ShortText",
    "TimeZoneName",
    "in_utc",
]

ID_PATTERN = r"^[A-Za-z0-9_.:@-]+$"
ID_LENGTH = 100
Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_LENGTH, pattern=ID_PATTERN)]
"""An id in a request body (an engagement, a coach, a client...)."""
PathId = Annotated[str, Path(min_length=1, max_length=ID_LENGTH, pattern=ID_PATTERN)]
"""The same id as a path parameter (`/v1/engagements/{engagement_id}`...)."""
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
# What a value that does not match one of these patterns is told (the problem's `errors`).
PATTERN_MESSAGES = {
    ID_PATTERN: "an id has only letters, digits and _ . : @ -",
    EMAIL_PATTERN: "not a valid email address",
}
# Strict: `true` or `"5"` is not a number (lax mode would read them as 1.0 and 5.0).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e12, le=1e12)]
Scores = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], Number],
    Field(min_length=1, max_length=100),
]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class RequestBody(BaseModel):
    """Base of request bodies: unknown fields are refused, and so are NUL characters anywhere
    (PostgreSQL's jsonb, where projections keep documents, cannot hold them), each reported
    against the field that holds it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="before")
    @classmethod
    def no_nul_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if _is_body(cls.model_fields[str(info.field_name)].annotation):
            return value  # a nested body checks its own fields
        if _has_nul(value):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return value


def _is_body(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, RequestBody)


class CommandAccepted(BaseModel):
    """Every successful command answers at least its stream version."""

    model_config = ConfigDict(extra="allow")

    stream_version: int


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339_text(value: object) -> object:
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise ValueError("expected an RFC 3339 time with an offset, e.g. 2026-05-01T09:30:00Z")


def in_utc(moment: datetime) -> datetime:
    """The same instant in UTC; ValueError when that falls outside the representable years."""
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("time out of range") from error


Rfc3339Time = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(in_utc)]
"""A point in time as RFC 3339 text with an offset, held in UTC."""


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_time_zone(name: str) -> str:
    if name not in _time_zones():
        raise ValueError("not an IANA time zone name, e.g. Europe/London or America/New_York")
    return name


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_time_zone)]
"""An IANA time zone name (`Europe/London`), as the time zone database on this machine or the
`tzdata` package knows it."""
