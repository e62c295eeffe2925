"""The published event schemas: every version of every event each service writes, generated
from the models, personal fields marked; stored data validates against them; the snapshot in
`schemas/` matches them, and changes only in ways that keep each version's promise."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from typer.testing import CliRunner

from rapport.cli import app as rapport_cli
from rapport.registry import SERVICES, events_of
from rapport.schemas import REFRESH, compare, load_snapshot, render, snapshot_path
from services.engagement.domain.events import (
    FACTORS,
    HomeworkVerified,
    RelationshipCheckInRecorded,
    SupervisionRecommendedV1,
)
from services.intake.domain.events import (
    ClientCommitted,
    ClientDetails,
    Goal,
    GoalSetV1,
    IntakeStarted,
)
from shared.security.crypto import Record, protector
from shared.model.envelope import GENESIS_HASH, Envelope, format_time, new_id, seal
from shared.model.event_schemas import (
    DIALECT,
    EventSchemas,
    InvalidEventData,
    asyncapi_messages,
    compare_snapshot,
    data_schema,
    published_schemas,
)
from shared.model.events import (
    PERSONAL_SCHEMA_KEY,
    DomainEvent,
    EventRegistry,
    UnknownEventType,
    dump_protected,
    personal_fields_of,
)

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SEAL = protector(AESGCM.generate_key(bit_length=256), Record("client-1", "engagement-1"))
BUMP_OR_REFRESH = (
    "A model changed without a new schema_version. If the change is not backward compatible,"
    " give the model a new schema_version and keep the old one with `@registry.historical`"
    f" and an upcaster; if it is, refresh the snapshot: `{REFRESH}`."
)


def stored(event: DomainEvent, *, schema_version: int | None = None) -> Envelope:
    """The envelope the store would write for `event`, personal fields sealed."""
    return seal(
        {
            "event_id": new_id(),
            "event_type": event.event_type,
            "schema_version": schema_version or event.schema_version,
            "stream_id": "engagement-1",
            "stream_version": 1,
            "occurred_at": format_time(AT),
            "recorded_at": format_time(AT),
            "producer": "test",
            "correlation_id": new_id(),
            "causation_id": None,
            "actor": {"role": "coach", "id": "coach-1"},
            "data": dump_protected(event, SEAL),
            "prev_hash": GENESIS_HASH,
        }
    )


def with_data(envelope: Envelope, **changes: Any) -> Envelope:
    return envelope.model_copy(update={"data": {**envelope.data, **changes}})


def committed() -> ClientCommitted:
    return ClientCommitted(
        engagement_id="engagement-1",
        client_id="client-1",
        coach_id="coach-1",
        supervisor_id=None,
        goals=[
            Goal(
                goal_id="g-1",
                title="Run 5k",
                measure="km",
                baseline=1,
                target=5,
                target_date=date(2026, 9, 1),
            )
        ],
        baselines=[],
        session_cadence_days=7,
        contact_channels=["video"],
        contact_hours="weekdays",
        committed_at=AT,
    )


@pytest.fixture(scope="module")
def schemas() -> dict[str, EventSchemas]:
    return {service: EventSchemas.of(events_of(service)) for service in SERVICES}


def test_every_item_is_one_version_of_one_type_sorted_by_type_then_version() -> None:
    for service in SERVICES:
        items = published_schemas(events_of(service))["items"]
        keys = [(item["event_type"], item["schema_version"]) for item in items]
        assert keys == sorted(set(keys)), service
        for item in items:
            assert set(item) == {"event_type", "schema_version", "schema"}
            assert item["schema"]["$schema"] == DIALECT
            assert item["schema"]["title"] == item["event_type"]
            assert item["schema"]["type"] == "object"


def test_upcast_versions_stay_published_next_to_the_current_ones() -> None:
    def versions(service: str, event_type: str) -> list[int]:
        items = published_schemas(events_of(service))["items"]
        return [item["schema_version"] for item in items if item["event_type"] == event_type]

    assert versions("intake", "GoalSet") == [1, 2]
    assert versions("engagement", "SupervisionRecommended") == [1, 2]
    assert versions("engagement", "HomeworkVerified") == [1]


@pytest.mark.parametrize("service", SERVICES)
def test_every_version_up_to_the_current_one_has_a_model(service: str) -> None:
    models = events_of(service).models()
    for event_type in {model.event_type for model in models}:
        versions = [model.schema_version for model in models if model.event_type == event_type]
        assert versions == list(range(1, max(versions) + 1)), event_type


def subclasses(base: type[DomainEvent]) -> set[type[DomainEvent]]:
    found = set(base.__subclasses__())
    return found.union(*(subclasses(sub) for sub in found))


@pytest.mark.parametrize("service", SERVICES)
def test_every_event_model_a_service_defines_is_in_its_registry(service: str) -> None:
    importlib.import_module(f"services.{service}.bootstrap")  # everything the service runs
    defined = {
        m for m in subclasses(DomainEvent) if m.__module__.startswith(f"services.{service}.")
    }
    assert defined == set(events_of(service).models())


def test_a_historical_model_must_be_of_a_registered_type_and_older_than_its_current_one() -> None:
    registry = EventRegistry([HomeworkVerified])
    with pytest.raises(UnknownEventType):
        registry.historical(GoalSetV1)
    with pytest.raises(ValueError, match="not older than the current v1"):
        registry.historical(HomeworkVerified)


@pytest.mark.parametrize("service", SERVICES)
def test_every_personal_field_is_marked_as_ciphertext_in_its_schema(service: str) -> None:
    for model in events_of(service).models():
        properties = data_schema(model)["properties"]
        marked = {name for name, field in properties.items() if field.get(PERSONAL_SCHEMA_KEY)}
        assert marked == personal_fields_of(model), model.__name__
        for name in marked:
            assert "enc:v2:" in properties[name]["description"]


def test_personal_fields_of_nested_models_are_marked_in_their_definitions() -> None:
    client = data_schema(IntakeStarted)["$defs"]["ClientDetails"]["properties"]
    assert {name for name, field in client.items() if field.get(PERSONAL_SCHEMA_KEY)} == set(
        personal_fields_of(ClientDetails)
    )
    goal = data_schema(ClientCommitted)["$defs"]["Goal"]["properties"]
    assert goal["title"][PERSONAL_SCHEMA_KEY] and goal["measure"][PERSONAL_SCHEMA_KEY]
    assert PERSONAL_SCHEMA_KEY not in goal["baseline"]


def test_stored_data_with_sealed_personal_fields_validates(
    schemas: dict[str, EventSchemas],
) -> None:
    started = stored(
        IntakeStarted(
            engagement_id="engagement-1",
            client_id="client-1",
            coach_id="coach-1",
            supervisor_id="sup-1",
            client=ClientDetails(name="Ada", email="ada@example.org", timezone="Europe/London"),
        )
    )
    assert started.data["client"]["name"].startswith("enc:v2:client.name:")
    checkin = stored(
        RelationshipCheckInRecorded(
            checkin_id="k-1",
            rater="client",
            ratings=dict.fromkeys(FACTORS, 4),
            comment="kind",
            coach_id="coach-1",
            recorded_at=AT,
        )
    )
    for envelope in (started, stored(committed())):
        assert schemas["intake"].errors(envelope) == []
    assert schemas["engagement"].errors(checkin) == []


def test_data_that_does_not_match_its_schema_is_reported_field_by_field(
    schemas: dict[str, EventSchemas],
) -> None:
    verified = stored(HomeworkVerified(homework_id="h-1", outcome="confirmed", verified_at=AT))
    engagement = schemas["engagement"]
    assert engagement.errors(verified) == []
    wrong = with_data(verified, outcome="maybe", verified_at="yesterday", extra=1)
    assert engagement.errors(wrong) == [
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.outcome: 'maybe' is not one of ['confirmed', 'refuted']",
        "$.verified_at: 'yesterday' is not a 'date-time'",
    ]
    missing = verified.model_copy(update={"data": {"homework_id": "h-1"}})
    assert engagement.errors(missing) == [
        "$: 'outcome' is a required property",
        "$: 'verified_at' is a required property",
    ]
    with pytest.raises(
        InvalidEventData, match=r"HomeworkVerified v1 \(event [-0-9a-f]+\): .*\$\.outcome: .maybe."
    ):
        engagement.validate(wrong)
    engagement.validate(verified)


def test_an_envelope_of_a_version_nobody_published_is_reported(
    schemas: dict[str, EventSchemas],
) -> None:
    verified = stored(HomeworkVerified(homework_id="h-1", outcome="refuted", verified_at=AT))
    future = verified.model_copy(update={"schema_version": 9})
    assert schemas["engagement"].errors(future) == [
        "no schema is published for HomeworkVerified v9"
    ]
    assert schemas["intake"].errors(verified) == ["no schema is published for HomeworkVerified v1"]


def test_version_1_rows_validate_against_version_1_and_read_as_valid_current_data(
    schemas: dict[str, EventSchemas],
) -> None:
    goal = stored(GoalSetV1(goal_id="g-1", title="Run", measure="km", baseline=1, target=5))
    supervision = stored(
        SupervisionRecommendedV1(
            party="coach",
            reason="persistent_violations",
            violation_id="v-3",
            violations_in_window=3,
            supervisor_id=None,
        )
    )
    for service, old in (("intake", goal), ("engagement", supervision)):
        registry = events_of(service)
        assert schemas[service].errors(old) == []
        as_current = registry.upcast_envelope(old)
        assert as_current.schema_version == 2
        assert schemas[service].errors(as_current) == []
    as_version_2 = goal.model_copy(update={"schema_version": 2})
    assert schemas["intake"].errors(as_version_2) == ["$: 'direction' is a required property"]


def test_the_asyncapi_messages_reference_each_versions_published_schema() -> None:
    published = published_schemas(events_of("intake"))
    messages = asyncapi_messages(published)
    assert list(messages) == [
        f"{item['event_type']}.v{item['schema_version']}" for item in published["items"]
    ]
    goal_v1 = messages["GoalSet.v1"]
    assert goal_v1["headers"]["properties"]["schema_version"] == {"const": "1"}
    envelope, own = goal_v1["payload"]["schema"]["allOf"]
    assert envelope == {"$ref": "#/components/schemas/Envelope"}
    reference = own["properties"]["data"]["$ref"]
    document, pointer = reference.split("#")
    assert document == "/v1/schemas"
    target: Any = published
    for part in pointer.strip("/").split("/"):
        target = target[int(part)] if isinstance(target, list) else target[part]
    assert target == data_schema(GoalSetV1)


# The snapshot in the repository: what subscribers were promised.


@pytest.mark.parametrize("service", SERVICES)
def test_the_published_schemas_are_exactly_the_snapshot(service: str) -> None:
    comparison = compare(service)
    assert comparison.unchanged, "\n".join([*comparison.lines(), BUMP_OR_REFRESH])


@pytest.mark.parametrize("service", SERVICES)
def test_no_published_version_changed_in_a_way_its_stored_data_would_not_match(
    service: str,
) -> None:
    comparison = compare(service)
    assert comparison.refreshable, "\n".join(
        [
            *comparison.lines(),
            "These changes break a published version: give the model a new schema_version"
            " and keep the old one with `@registry.historical` and an upcaster.",
        ]
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_snapshot_file_is_spelt_as_the_refresh_writes_it(service: str) -> None:
    path = snapshot_path(service)
    assert path.read_text(encoding="utf-8") == render(load_snapshot(service))


def test_a_new_version_a_compatible_change_a_breaking_one_and_a_removal_are_told_apart() -> None:
    published = published_schemas(events_of("intake"))
    snapshot: dict[str, Any] = json.loads(render(published))
    items = snapshot["items"]
    assert [item["event_type"] for item in items[:3]] == [
        "AgreementSigned",
        "BaselineAssessed",
        "ClientCommitted",
    ]
    del items[0]  # AgreementSigned v1: not in the snapshot yet
    items[0]["schema"]["properties"]["total"] = {"type": "number"}  # gone from the model now
    items[1]["schema"]["properties"]["client_id"]["maxLength"] = 10  # the model is wider now
    items.append({**items[-1], "schema_version": 2})  # a version no model generates
    comparison = compare_snapshot(snapshot, published)
    assert comparison.added == [("AgreementSigned", 1)]
    assert comparison.changed == [("ClientCommitted", 1)]
    assert comparison.breaking == {("BaselineAssessed", 1): ["data.total: property removed"]}
    assert comparison.removed == [("IntakeStarted", 2)]
    assert not comparison.refreshable and not comparison.unchanged
    assert compare_snapshot(published, published).unchanged


def test_the_refresh_writes_compatible_changes_and_refuses_breaking_ones(tmp_path: Path) -> None:
    runner = CliRunner()
    written = runner.invoke(rapport_cli, ["schemas", "--write", "--dir", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert {path.name for path in tmp_path.iterdir()} == {f"{s}.json" for s in SERVICES}
    checked = runner.invoke(rapport_cli, ["schemas", "--dir", str(tmp_path)])
    assert checked.exit_code == 0 and "as published" in checked.output
    path = snapshot_path("intake", tmp_path)
    current = path.read_text()

    narrower = json.loads(current)
    narrower["items"][0]["schema"]["properties"]["session_cadence_days"]["maximum"] = 30
    path.write_text(render(narrower))
    stale = runner.invoke(rapport_cli, ["schemas", "--dir", str(tmp_path)])
    assert stale.exit_code == 1
    assert "AgreementSigned v1: changed compatibly" in stale.output and REFRESH in stale.output
    refreshed = runner.invoke(rapport_cli, ["schemas", "--write", "--dir", str(tmp_path)])
    assert refreshed.exit_code == 0, refreshed.output
    assert path.read_text() == current

    wider = json.loads(current)
    wider["items"][0]["schema"]["properties"]["signed_by_witness"] = {"type": "boolean"}
    path.write_text(render(wider))
    refused = runner.invoke(rapport_cli, ["schemas", "--write", "--dir", str(tmp_path)])
    assert refused.exit_code == 1
    assert "AgreementSigned v1: changed incompatibly: data.signed_by_witness: property removed" in (
        refused.output
    )
    assert path.read_text() == render(wider)  # left as it was
