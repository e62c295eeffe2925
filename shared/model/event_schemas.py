"""The published JSON Schemas of events' `data` (contract section 11), generated from the models.

Every event type and every schema version a service writes or has written (older ones are the
models registered with `EventRegistry.historical`) gets a JSON Schema (2020-12) of its stored
`data`: what `model_dump(mode="json")` writes, so the serialization schema. A personal field is
a string there too, a ciphertext token, marked `"x-rapport-personal": true`.

A snapshot of the published list is kept in the repository; `compare_snapshot` says what
changed since, and which changes break the promise of a version (`breaking_changes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from jsonschema import Draft202012Validator

from shared.model.envelope import Envelope
from shared.model.events import DomainEvent, EventRegistry
from shared.model.schema_compatibility import breaking_changes

__all__ = [
    "DIALECT",
    "EventSchemas",
    "InvalidEventData",
    "Published",
    "PublishedSchema",
    "SnapshotComparison",
    "asyncapi_messages",
    "compare_snapshot",
    "data_schema",
    "published_schemas",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"

Version = tuple[str, int]  # (event_type, schema_version)


class PublishedSchema(TypedDict):
    """One item of `GET /v1/schemas`."""

    event_type: str
    schema_version: int
    schema: dict[str, Any]


def data_schema(model: type[DomainEvent]) -> dict[str, Any]:
    """The JSON Schema of the `data` an event of `model` is stored with."""
    generated = model.model_json_schema(mode="serialization")
    return {"$schema": DIALECT, **generated, "title": model.event_type}


def published_schemas(registry: EventRegistry) -> dict[str, list[PublishedSchema]]:
    """`{items: [{event_type, schema_version, schema}]}`, every version of every event type the
    registry knows (current and historical), by type then version."""
    items = [
        PublishedSchema(
            event_type=model.event_type,
            schema_version=model.schema_version,
            schema=data_schema(model),
        )
        for model in registry.models()
    ]
    return {"items": items}


Published = Mapping[str, Sequence[PublishedSchema]]
"""A published list, `{items: [...]}`, as `published_schemas` answers or a snapshot holds it."""


def _by_version(published: Published) -> dict[Version, PublishedSchema]:
    return {(item["event_type"], item["schema_version"]): item for item in published["items"]}


class InvalidEventData(ValueError):
    """An envelope's `data` does not match the published schema of its type and version."""

    def __init__(self, envelope: Envelope, errors: Sequence[str]) -> None:
        super().__init__(
            f"{envelope.event_type} v{envelope.schema_version} (event {envelope.event_id}): "
            + "; ".join(errors)
        )
        self.errors = list(errors)


class EventSchemas:
    """Checks envelopes' `data` against a published list, one validator per version."""

    def __init__(self, published: Published) -> None:
        self._validators: dict[Version, Draft202012Validator] = {}
        for version, item in _by_version(published).items():
            Draft202012Validator.check_schema(item["schema"])
            self._validators[version] = Draft202012Validator(
                item["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER
            )

    @classmethod
    def of(cls, registry: EventRegistry) -> EventSchemas:
        return cls(published_schemas(registry))

    def errors(self, envelope: Envelope) -> list[str]:
        """Why the envelope's `data` does not match its version's schema (`path: message`);
        empty when it does."""
        validator = self._validators.get((envelope.event_type, envelope.schema_version))
        if validator is None:
            return [f"no schema is published for {envelope.event_type} v{envelope.schema_version}"]
        found = sorted(validator.iter_errors(envelope.data), key=lambda error: error.json_path)
        return [f"{error.json_path}: {error.message}" for error in found]

    def validate(self, envelope: Envelope) -> None:
        """Raise InvalidEventData unless the envelope's `data` matches its version's schema."""
        errors = self.errors(envelope)
        if errors:
            raise InvalidEventData(envelope, errors)


def asyncapi_messages(
    published: Published,
    *,
    schemas_url: str = "/v1/schemas",
    envelope_ref: str = "#/components/schemas/Envelope",
) -> dict[str, dict[str, Any]]:
    """AsyncAPI 3 `components.messages`, one per event type and version (`<type>.v<version>`):
    the contract's headers, and as payload the envelope whose `data` references that version's
    item of `schemas_url` (`<schemas_url>#/items/<index>/schema`)."""
    messages: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(published["items"]):
        event_type, version = item["event_type"], item["schema_version"]
        messages[f"{event_type}.v{version}"] = {
            "name": event_type,
            "title": f"{event_type} (schema_version {version})",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "event_type": {"const": event_type},
                    "schema_version": {"const": str(version)},
                },
                "required": ["event_type", "schema_version"],
            },
            "payload": {
                "schemaFormat": SCHEMA_FORMAT,
                "schema": {
                    "allOf": [
                        {"$ref": envelope_ref},
                        {
                            "properties": {
                                "event_type": {"const": event_type},
                                "schema_version": {"const": version},
                                "data": {"$ref": f"{schemas_url}#/items/{index}/schema"},
                            }
                        },
                    ]
                },
            },
        }
    return messages


@dataclass(frozen=True)
class SnapshotComparison:
    """What differs between the published list and its snapshot in the repository."""

    added: list[Version] = field(default_factory=list)
    """Versions not in the snapshot yet: published only once the snapshot is refreshed."""
    changed: list[Version] = field(default_factory=list)
    """Versions whose schema changed in a way that still accepts every old `data`."""
    breaking: dict[Version, list[str]] = field(default_factory=dict)
    """Versions whose schema changed in a way that does not (with the reasons)."""
    removed: list[Version] = field(default_factory=list)
    """Versions in the snapshot that are no longer published."""

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.breaking or self.removed)

    @property
    def refreshable(self) -> bool:
        """Whether the snapshot may be rewritten as published (nothing breaks a version)."""
        return not (self.breaking or self.removed)

    def lines(self) -> list[str]:
        """One line per difference, for people."""
        return [
            *(f"{_name(v)}: new, not in the snapshot yet" for v in self.added),
            *(f"{_name(v)}: changed compatibly" for v in self.changed),
            *(
                f"{_name(v)}: changed incompatibly: {reason}"
                for v, reasons in self.breaking.items()
                for reason in reasons
            ),
            *(f"{_name(v)}: published before and no longer generated" for v in self.removed),
        ]


def _name(version: Version) -> str:
    return f"{version[0]} v{version[1]}"


def compare_snapshot(
    snapshot: Published,
    published: Published,
) -> SnapshotComparison:
    """The differences between a snapshot and the list published now, by type then version."""
    before, now = _by_version(snapshot), _by_version(published)
    comparison = SnapshotComparison(
        added=sorted(now.keys() - before.keys()), removed=sorted(before.keys() - now.keys())
    )
    for version in sorted(before.keys() & now.keys()):
        old, new = before[version]["schema"], now[version]["schema"]
        if old == new:
            continue
        reasons = breaking_changes(old, new)
        if reasons:
            comparison.breaking[version] = reasons
        else:
            comparison.changed.append(version)
    return comparison
