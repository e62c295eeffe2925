"""Whether a JSON Schema may replace another under the same event version.

A published `(event_type, schema_version)` is a promise: every `data` stored under it validates
against it, whenever it was written. A new schema keeps that promise when it accepts everything
the old one accepted, so it may widen (an optional property, a wider type, another enum value, a
looser bound) but never narrow (a new required property, a removed property, a narrower type, a
removed enum value, `additionalProperties` tightened). A field that becomes personal, or stops
being personal, breaks it too: readers would get ciphertext where they had text, or the reverse.

`breaking_changes` knows the keywords pydantic writes; any other keyword that differs counts as
breaking, since nothing proves it compatible.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shared.model.events import PERSONAL_SCHEMA_KEY

__all__ = ["breaking_changes"]

Node = Mapping[str, Any]
Schema = Node | bool
Seen = frozenset[tuple[str, str]]  # the pairs of references being compared already

ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"}
    | {"deprecated", "readOnly", "writeOnly"}
)
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT = ("pattern", "format", "multipleOf", "contentEncoding", "contentMediaType")
HANDLED = frozenset(
    {"$ref", "anyOf", "oneOf", "type", "enum", "const", "properties", "required"}
    | {"additionalProperties", "propertyNames", "items", "uniqueItems", PERSONAL_SCHEMA_KEY}
    | {*LOWER_BOUNDS, *UPPER_BOUNDS, *EXACT}
)
JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array"}


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Why `new` does not accept everything `old` accepts, one reason a line (`path: what`);
    empty when it does. `$ref`s resolve within each schema's own document."""
    return list(_Comparison(old, new).compare(old, new, "data", frozenset()))


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.roots = (old_root, new_root)

    def compare(self, old: Schema, new: Schema, path: str, seen: Seen) -> Iterator[str]:
        refs = (_ref_of(old), _ref_of(new))
        if refs in seen:
            return  # a recursive model: this pair is being compared already
        seen = seen | {refs} if refs != ("", "") else seen
        old, new = _resolved(old, self.roots[0]), _resolved(new, self.roots[1])
        if old is False or new is True:
            return
        if new is False:
            yield f"{path}: accepts nothing any more"
            return
        old = {} if old is True else old
        yield from _personal(old, new, path)
        old_options, new_options = _alternatives(old), _alternatives(new)
        if old_options and not new_options:
            yield f"{path}: accepts nothing any more"
        elif len(old_options) == len(new_options) == 1:
            yield from self._compare_plain(old_options[0], new_options[0], path, seen)
        else:
            for option in old_options:
                reasons = [list(self.compare(option, other, path, seen)) for other in new_options]
                if all(reasons):
                    yield from min(reasons, key=len)

    def _compare_plain(self, old: Node, new: Node, path: str, seen: Seen) -> Iterator[str]:
        yield from _types(old, new, path)
        yield from _values(old, new, path)
        yield from _bounds(old, new, path)
        yield from self._object(old, new, path, seen)
        for keyword, where in (("items", f"{path}[]"), ("propertyNames", f"{path} (keys)")):
            if keyword in old or keyword in new:
                yield from self.compare(old.get(keyword, True), new.get(keyword, True), where, seen)
        for keyword in sorted((set(old) | set(new)) - HANDLED - ANNOTATIONS):
            if not keyword.startswith("x-") and old.get(keyword) != new.get(keyword):
                yield f"{path}: `{keyword}` changed, and this checker cannot tell it is compatible"

    def _object(self, old: Node, new: Node, path: str, seen: Seen) -> Iterator[str]:
        old_properties: Mapping[str, Any] = old.get("properties", {})
        new_properties: Mapping[str, Any] = new.get("properties", {})
        old_extra: Schema = old.get("additionalProperties", True)
        new_extra: Schema = new.get("additionalProperties", True)
        for name, schema in old_properties.items():
            if name not in new_properties:
                yield f"{path}.{name}: property removed"
            else:
                yield from self.compare(schema, new_properties[name], f"{path}.{name}", seen)
        for name in new_properties.keys() - old_properties.keys():
            yield from self.compare(old_extra, new_properties[name], f"{path}.{name}", seen)
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            known = name in old_properties
            yield f"{path}.{name}: " + ("became required" if known else "new required property")
        if new_extra is False and old_extra is not False:
            yield f"{path}: `additionalProperties` tightened, no other property accepted"
        else:
            yield from self.compare(old_extra, new_extra, f"{path}{{}}", seen)


def _ref_of(schema: Schema) -> str:
    return schema.get("$ref", "") if isinstance(schema, Mapping) else ""


def _resolved(schema: Schema, root: Schema) -> Schema:
    """The schema with a local `$ref` replaced by its target (the siblings kept)."""
    while isinstance(schema, Mapping) and "$ref" in schema:
        reference = str(schema["$ref"])
        if not reference.startswith("#"):
            return schema  # another document: compared as it is spelt
        target: Any = root
        for part in filter(None, reference[1:].split("/")):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**target, **siblings} if isinstance(target, Mapping) else target
    return schema


def _alternatives(schema: Node) -> list[Node]:
    """The schema as a list of alternatives (`anyOf`/`oneOf`), each with the shared keywords;
    an alternative that accepts nothing (`false`) is left out."""
    shared = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", PERSONAL_SCHEMA_KEY)}
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return [shared]
    return [{**shared, **(option if option is not True else {})} for option in options if option]


def _personal(old: Node, new: Node, path: str) -> Iterator[str]:
    was, now = bool(old.get(PERSONAL_SCHEMA_KEY)), bool(new.get(PERSONAL_SCHEMA_KEY))
    if was != now:
        yield f"{path}: " + ("became personal data (ciphertext)" if now else "no longer personal")


def _type_set(schema: Node) -> set[str] | None:
    """The JSON types a schema allows, None for any."""
    if "type" in schema:
        declared = schema["type"]
        return {declared} if isinstance(declared, str) else set(declared)
    values = _enumerated(schema)
    if values is None:
        return None
    return {"null" if v is None else JSON_TYPES.get(type(v), "object") for v in values}


def _types(old: Node, new: Node, path: str) -> Iterator[str]:
    old_types, new_types = _type_set(old), _type_set(new)
    if new_types is None:
        return
    if old_types is None:
        yield f"{path}: type narrowed to {sorted(new_types)}"
        return
    if "number" in new_types:
        new_types = new_types | {"integer"}
    lost = old_types - new_types
    if lost:
        yield f"{path}: type narrowed, {sorted(lost)} no longer accepted"


def _enumerated(schema: Node) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values: list[Any] | None = schema.get("enum")
    return values


def _values(old: Node, new: Node, path: str) -> Iterator[str]:
    old_values, new_values = _enumerated(old), _enumerated(new)
    if new_values is None:
        return
    if old_values is None:
        yield f"{path}: now limited to {new_values}"
        return
    removed = [value for value in old_values if value not in new_values]
    if removed:
        yield f"{path}: enum value(s) removed: {removed}"


def _bounds(old: Node, new: Node, path: str) -> Iterator[str]:
    for keyword in LOWER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
            yield f"{path}: `{keyword}` raised to {new[keyword]}"
    for keyword in UPPER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
            yield f"{path}: `{keyword}` lowered to {new[keyword]}"
    for keyword in EXACT:
        if keyword in new and new[keyword] != old.get(keyword):
            yield f"{path}: `{keyword}` is now {new[keyword]!r}"
    if new.get("uniqueItems") and not old.get("uniqueItems"):
        yield f"{path}: items must now be unique"
