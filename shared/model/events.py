"""Domain events: frozen pydantic models with a type name and a schema version.

A registry maps stored `(event_type, schema_version)` rows back to models, upcasting old
versions on read; stored rows are never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shared.model.envelope import Envelope

__all__ = [
    "PERSONAL_SCHEMA_KEY",
    "Command",
    "DomainEvent",
    "EventRegistry",
    "OptionalPersonalStr",
    "PersonalStr",
    "UnknownEventType",
    "dump_protected",
    "personal_fields_of",
]


PERSONAL_SCHEMA_KEY = "x-rapport-personal"
PERSONAL_DESCRIPTION = (
    "Personal data (contract section 5): a token `enc:v2:<field>:<base64url(nonce|ciphertext)>`"
    " sealed with the client's own key, never plain text. Rows written before the field was"
    " encrypted hold what they held then (`enc:v1:...` tokens or text)."
)


class PersonalData:
    """Field marker: the value is personal data and is encrypted with the client's key."""

    def __repr__(self) -> str:
        return "PersonalData()"

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """In a JSON Schema the field says it is personal and holds ciphertext."""
        return {
            **handler(schema),
            "description": PERSONAL_DESCRIPTION,
            PERSONAL_SCHEMA_KEY: True,
        }


PERSONAL = PersonalData()
PersonalStr = Annotated[str, PERSONAL]
OptionalPersonalStr = Annotated[str | None, PERSONAL]


class DomainEvent(BaseModel):
    """Base of every event: immutable, named in the past tense, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Command(BaseModel):
    """Base of every command: immutable, named in the imperative."""

    model_config = ConfigDict(frozen=True, extra="forbid")


E = TypeVar("E", bound=DomainEvent)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """A stored event names a type this service does not know."""


class EventRegistry:
    """Event types by name, with upcasters from older schema versions and the models those
    versions were written with."""

    def __init__(self, event_types: Iterable[type[DomainEvent]] = ()) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._history: dict[tuple[str, int], type[DomainEvent]] = {}
        for event_type in event_types:
            self.register(event_type)

    def register(self, event_type: type[E]) -> type[E]:
        self._types[event_type.event_type] = event_type
        return event_type

    def historical(self, model: type[E]) -> type[E]:
        """Register (as a class decorator) the model an older `schema_version` of a registered
        type was written with. Its rows are still read through the upcasters; the model only
        describes them (their published schema)."""
        current = self._types.get(model.event_type)
        if current is None:
            raise UnknownEventType(model.event_type)
        if model.schema_version >= current.schema_version:
            raise ValueError(
                f"{model.__name__} is {model.event_type} v{model.schema_version}, not older"
                f" than the current v{current.schema_version}"
            )
        self._history[(model.event_type, model.schema_version)] = model
        return model

    def models(self) -> list[type[DomainEvent]]:
        """The model of every version, current and historical, by type then version."""
        current = {(m.event_type, m.schema_version): m for m in self._types.values()}
        every = {**self._history, **current}
        return [every[key] for key in sorted(every)]

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning `data` of `from_version` into `from_version + 1`."""

        def register(function: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = function
            return function

        return register

    def upcast(self, event_type: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
        model = self._types.get(event_type)
        if model is None:
            raise UnknownEventType(event_type)
        version = schema_version
        while version < model.schema_version:
            data = self._upcasters[(event_type, version)](data)
            version += 1
        return data

    def upcast_envelope(self, envelope: Envelope) -> Envelope:
        """The envelope with its `data` at the current schema version, for folds that read
        data directly (projections). Unknown types and current versions come back as they are.
        The stored row is never rewritten; the copy's `hash` is the stored event's."""
        model = self._types.get(envelope.event_type)
        if model is None or envelope.schema_version >= model.schema_version:
            return envelope
        data = self.upcast(envelope.event_type, envelope.schema_version, dict(envelope.data))
        return envelope.model_copy(update={"data": data, "schema_version": model.schema_version})

    def load(self, envelope: Envelope) -> DomainEvent:
        """The domain event an envelope carries, at the current schema version."""
        data = self.upcast(envelope.event_type, envelope.schema_version, dict(envelope.data))
        return self._types[envelope.event_type].model_validate(data)


def personal_fields_of(model: type[BaseModel]) -> set[str]:
    return {name for name, field in model.model_fields.items() if PERSONAL in field.metadata}


def dump_protected(model: BaseModel, protect: Callable[[str, str], str]) -> dict[str, Any]:
    """Dump a model to JSON-ready data, passing every personal string through
    `protect(field, value)`; `field` is the value's path of field names (`client.name`)."""
    dumped: dict[str, Any] = model.model_dump(mode="json")
    _protect_into(model, dumped, protect, "")
    return dumped


def _protect_into(
    model: BaseModel, dumped: dict[str, Any], protect: Callable[[str, str], str], path: str
) -> None:
    personal = personal_fields_of(type(model))
    for name in type(model).model_fields:
        value = getattr(model, name)
        field = f"{path}{name}"
        if name in personal and isinstance(value, str):
            dumped[name] = protect(field, value)
        elif isinstance(value, BaseModel):
            _protect_into(value, dumped[name], protect, f"{field}.")
        elif isinstance(value, list | tuple):
            for item, item_dumped in zip(value, dumped[name], strict=True):
                if isinstance(item, BaseModel):
                    _protect_into(item, item_dumped, protect, f"{field}.")
