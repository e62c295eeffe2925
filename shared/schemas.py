"""Request-body building blocks shared by the services' HTTP edges."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
Scores = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], Number],
    Field(min_length=1, max_length=100),
]


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CommandAccepted(BaseModel):
    """Every successful command answers at least its stream version."""

    model_config = ConfigDict(extra="allow")

    stream_version: int
