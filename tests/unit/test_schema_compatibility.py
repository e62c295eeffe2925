"""The compatibility rules of a published schema under one version: widening is allowed,
narrowing is not (both directions, on hand-written schemas and on pydantic models)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from services.engagement.domain.events import SupervisionRecommended, SupervisionRecommendedV1
from services.intake.domain.events import GoalSet, GoalSetV1
from shared.model.event_schemas import data_schema
from shared.model.events import DomainEvent, OptionalPersonalStr, PersonalStr
from shared.model.schema_compatibility import breaking_changes

STRING: dict[str, Any] = {"type": "string"}
NULLABLE_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def record(
    properties: dict[str, Any], required: tuple[str, ...] = (), **keywords: Any
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **keywords,
    }


BASE = record({"id": STRING, "count": {"type": "integer"}}, ("id",))

COMPATIBLE = {
    "the same schema": BASE,
    "an optional property added": record({**BASE["properties"], "notes": NULLABLE_STRING}, ("id",)),
    "a required property made optional": record(BASE["properties"]),
    "an integer widened to a number": record({"id": STRING, "count": {"type": "number"}}, ("id",)),
    "a string widened to a nullable string": record(
        {"id": NULLABLE_STRING, "count": {"type": "integer"}}, ("id",)
    ),
    "additional properties allowed": {**BASE, "additionalProperties": True},
    "titles and descriptions changed": {
        **BASE,
        "title": "Renamed",
        "description": "Other words.",
        "properties": {**BASE["properties"], "id": {**STRING, "title": "Identifier"}},
    },
}

BREAKING = {
    "a new required property": (
        record({**BASE["properties"], "kind": STRING}, ("id", "kind")),
        "data.kind: new required property",
    ),
    "an optional property made required": (
        record(BASE["properties"], ("id", "count")),
        "data.count: became required",
    ),
    "a property removed": (record({"id": STRING}, ("id",)), "data.count: property removed"),
    "an integer changed to a string": (
        record({"id": STRING, "count": {"type": "string"}}, ("id",)),
        "data.count: type narrowed, ['integer'] no longer accepted",
    ),
}


@pytest.mark.parametrize("new", COMPATIBLE.values(), ids=COMPATIBLE.keys())
def test_a_schema_that_accepts_everything_the_old_one_did_is_compatible(
    new: dict[str, Any],
) -> None:
    assert breaking_changes(BASE, new) == []


@pytest.mark.parametrize(("new", "reason"), BREAKING.values(), ids=BREAKING.keys())
def test_a_schema_that_rejects_something_the_old_one_accepted_is_breaking(
    new: dict[str, Any], reason: str
) -> None:
    assert reason in breaking_changes(BASE, new)


def test_additional_properties_tightened_to_none_is_breaking_and_loosened_is_not() -> None:
    open_record = {**BASE, "additionalProperties": True}
    assert breaking_changes(open_record, BASE) == [
        "data: `additionalProperties` tightened, no other property accepted"
    ]
    assert breaking_changes(BASE, open_record) == []


def test_a_nullable_string_narrowed_to_a_string_no_longer_accepts_null() -> None:
    assert breaking_changes(NULLABLE_STRING, STRING) == [
        "data: type narrowed, ['null'] no longer accepted"
    ]
    assert breaking_changes(STRING, NULLABLE_STRING) == []


def test_an_enum_may_gain_values_but_never_lose_one() -> None:
    old = {"type": "string", "enum": ["coach", "client"]}
    assert breaking_changes(old, {"type": "string", "enum": ["coach", "client", "admin"]}) == []
    assert breaking_changes(old, {"type": "string"}) == []
    assert breaking_changes(old, {"type": "string", "enum": ["coach"]}) == [
        "data: enum value(s) removed: ['client']"
    ]
    assert breaking_changes({"type": "string"}, old) == ["data: now limited to ['coach', 'client']"]
    assert breaking_changes({"const": "coach"}, {"enum": ["coach", "client"]}) == []


def test_bounds_may_loosen_but_not_tighten() -> None:
    old = {"type": "integer", "minimum": 1, "maximum": 5}
    assert breaking_changes(old, {"type": "integer", "minimum": 0}) == []
    assert breaking_changes(old, {"type": "integer", "minimum": 2, "maximum": 4}) == [
        "data: `minimum` raised to 2",
        "data: `maximum` lowered to 4",
    ]
    assert breaking_changes(STRING, {"type": "string", "maxLength": 10}) == [
        "data: `maxLength` lowered to 10"
    ]
    assert breaking_changes({"type": "string", "pattern": "^a"}, STRING) == []
    assert breaking_changes(STRING, {"type": "string", "format": "date-time"}) == [
        "data: `format` is now 'date-time'"
    ]


def test_array_items_and_map_keys_and_values_are_compared_too() -> None:
    numbers = {"type": "array", "items": {"type": "number"}}
    assert breaking_changes(numbers, {"type": "array", "items": {"type": "integer"}}) == [
        "data[]: type narrowed, ['number'] no longer accepted"
    ]
    ratings = {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "propertyNames": {"enum": ["empathy", "boundaries"]},
    }
    fewer_keys = {**ratings, "propertyNames": {"enum": ["empathy"]}}
    assert breaking_changes(ratings, fewer_keys) == [
        "data (keys): enum value(s) removed: ['boundaries']"
    ]
    wider_values = {**ratings, "additionalProperties": {"type": "number"}}
    assert breaking_changes(ratings, wider_values) == []


def test_a_property_added_where_any_extra_property_was_allowed_must_accept_any_value() -> None:
    old = {"type": "object", "properties": {}}
    assert breaking_changes(old, {"type": "object", "properties": {"x": STRING}}) == [
        "data.x: type narrowed to ['string']"
    ]
    assert breaking_changes(old, {"type": "object", "properties": {"x": {}}}) == []


def test_references_resolve_within_each_document() -> None:
    def document(name: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Client": record({"name": name}, ("name",))},
            **record({"client": {"$ref": "#/$defs/Client"}}, ("client",)),
        }

    assert breaking_changes(document(STRING), document(NULLABLE_STRING)) == []
    assert breaking_changes(document(NULLABLE_STRING), document(STRING)) == [
        "data.client.name: type narrowed, ['null'] no longer accepted"
    ]


def test_a_recursive_schema_is_compared_once_per_reference() -> None:
    children = {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    tree = {"$defs": {"Node": record({"children": children})}, "$ref": "#/$defs/Node"}
    assert breaking_changes(tree, tree) == []


def test_a_keyword_the_checker_does_not_know_is_breaking_whenever_it_changes() -> None:
    assert breaking_changes({"not": STRING}, {"not": {"type": "integer"}}) == [
        "data: `not` changed, and this checker cannot tell it is compatible"
    ]
    assert breaking_changes({"not": STRING}, {"not": STRING}) == []
    assert breaking_changes({"x-other": 1}, {"x-other": 2}) == []  # extensions are annotations


def test_a_field_that_becomes_personal_or_stops_being_personal_is_breaking() -> None:
    personal = {**STRING, "x-rapport-personal": True}
    assert breaking_changes(STRING, personal) == ["data: became personal data (ciphertext)"]
    assert breaking_changes(personal, STRING) == ["data: no longer personal"]


def test_boolean_schemas_follow_what_they_accept() -> None:
    assert breaking_changes(False, STRING) == []
    assert breaking_changes(STRING, True) == []
    assert breaking_changes(True, STRING) == ["data: type narrowed to ['string']"]
    assert breaking_changes(STRING, False) == ["data: accepts nothing any more"]
    assert breaking_changes({"anyOf": [STRING, False]}, {"anyOf": [True]}) == []
    assert breaking_changes({"anyOf": [STRING]}, {"anyOf": [False]}) == [
        "data: accepts nothing any more"
    ]


class NoteTaken(DomainEvent):
    event_type = "NoteTaken"

    note_id: str
    text: PersonalStr
    rating: int


class NoteTakenWithTags(DomainEvent):
    """An optional field added: old data still matches."""

    event_type = "NoteTaken"

    note_id: str
    text: PersonalStr
    rating: float
    tags: list[str] = []
    comment: OptionalPersonalStr = None


class NoteTakenWithKind(DomainEvent):
    """A required field added and a type narrowed: old data no longer matches."""

    event_type = "NoteTaken"

    note_id: str
    text: str
    rating: Literal[1, 2, 3]
    kind: str


def test_models_that_only_widen_generate_compatible_schemas() -> None:
    assert breaking_changes(data_schema(NoteTaken), data_schema(NoteTakenWithTags)) == []


def test_models_that_narrow_generate_breaking_schemas_with_every_reason() -> None:
    assert breaking_changes(data_schema(NoteTaken), data_schema(NoteTakenWithKind)) == [
        "data.text: no longer personal",
        "data.rating: now limited to [1, 2, 3]",
        "data.kind: new required property",
    ]


def test_goal_set_version_2_could_not_have_replaced_version_1_under_one_version() -> None:
    assert breaking_changes(data_schema(GoalSetV1), data_schema(GoalSet)) == [
        "data.measure: became personal data (ciphertext)",
        "data.direction: new required property",
    ]


def test_supervision_recommended_version_2_accepts_every_version_1_data() -> None:
    old, new = data_schema(SupervisionRecommendedV1), data_schema(SupervisionRecommended)
    assert breaking_changes(old, new) == []
    assert breaking_changes(new, old) != []  # and not the other way round
