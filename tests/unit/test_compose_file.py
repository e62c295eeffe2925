"""docker-compose.yml describes the contract's stack: Kafka (KRaft), PostgreSQL, three services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

CONTRACT_PORTS = {"intake": 8001, "engagement": 8002, "notifications": 8003}
SERVICES = sorted(CONTRACT_PORTS)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose.get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r}"
    service = services[name]
    assert isinstance(service, dict)
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _published_ports(service: dict[str, Any]) -> set[int]:
    published: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            if entry.get("published") is not None:
                published.add(int(str(entry["published"]).split("-")[0]))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2:  # "[ip:]host:container"
            published.add(int(parts[-2]))
    return published


def _depends_on(service: dict[str, Any]) -> dict[str, Any]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {name: {} for name in depends}
    return dict(depends)


def test_kafka_runs_as_a_single_kraft_node(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    env = _environment(kafka)
    assert env.get("KAFKA_PROCESS_ROLES"), "KAFKA_PROCESS_ROLES missing: not KRaft mode"
    assert "broker" in env["KAFKA_PROCESS_ROLES"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", "")
    assert "healthcheck" in kafka


def test_postgres_is_part_of_the_stack_with_a_readiness_check(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    assert str(postgres.get("image", "")).startswith("postgres")
    assert "pg_isready" in str(postgres.get("healthcheck", {}).get("test"))


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_built_from_the_dockerfile(compose: dict[str, Any], name: str) -> None:
    build = _service(compose, name).get("build")
    assert build is not None, f"{name} is not built"
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE.resolve()


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_publishes_its_contract_port(compose: dict[str, Any], name: str) -> None:
    published = _published_ports(_service(compose, name))
    gateway = (compose.get("services") or {}).get(f"{name}-gateway")
    if gateway is not None:  # several instances behind one address
        published |= _published_ports(gateway)
    assert CONTRACT_PORTS[name] in published


def test_engagement_runs_two_instances_behind_one_address(compose: dict[str, Any]) -> None:
    engagement = _service(compose, "engagement")
    assert engagement.get("deploy", {}).get("replicas", 1) >= 2
    assert _published_ports(engagement) == set()  # the gateway holds :8002
    gateway = _service(compose, "engagement-gateway")
    assert 8002 in _published_ports(gateway)
    assert "engagement:8002" in " ".join(str(v) for v in gateway["environment"].values())


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_healthcheck_on_its_health_endpoint(
    compose: dict[str, Any], name: str
) -> None:
    healthcheck = _service(compose, name).get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    test = (
        " ".join(healthcheck["test"])
        if isinstance(healthcheck["test"], list)
        else healthcheck["test"]
    )
    assert f"localhost:{CONTRACT_PORTS[name]}/health" in test


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_waits_for_healthy_postgres_and_kafka(
    compose: dict[str, Any], name: str
) -> None:
    depends = _depends_on(_service(compose, name))
    for dependency in ("postgres", "kafka"):
        assert dependency in depends, f"{name} does not depend on {dependency}"
        assert depends[dependency].get("condition") == "service_healthy"


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_sets_its_whole_environment(compose: dict[str, Any], name: str) -> None:
    env = _environment(_service(compose, name))
    required = {
        "RAPPORT_DATABASE_URL",
        "RAPPORT_KAFKA_BOOTSTRAP",
        "RAPPORT_JWT_SECRET",
        "RAPPORT_MASTER_KEY",
        f"RAPPORT_{name.upper()}_PORT",
        "RAPPORT_SERVICE",
    }
    assert required <= set(env), f"{name} lacks {sorted(required - set(env))}"
    assert env["RAPPORT_SERVICE"] == name
    assert env[f"RAPPORT_{name.upper()}_PORT"] == str(CONTRACT_PORTS[name])
    assert env["RAPPORT_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["RAPPORT_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["RAPPORT_DATABASE_URL"]


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_must_be_supplied_rather_than_defaulted(compose: dict[str, Any], name: str) -> None:
    env = _environment(_service(compose, name))
    for secret in ("RAPPORT_JWT_SECRET", "RAPPORT_MASTER_KEY"):
        assert env[secret].startswith(f"${{{secret}:?"), f"{secret} is not required in {name}"


def test_the_dockerfile_runs_the_service_named_by_rapport_service() -> None:
    assert DOCKERFILE.exists()
    text = DOCKERFILE.read_text()
    assert "python:3.11-slim" in text
    assert "services.${RAPPORT_SERVICE" in text


@pytest.mark.parametrize("name", SERVICES)
def test_the_module_each_service_runs_exists(name: str) -> None:
    entrypoint = ROOT / "services" / name / "__main__.py"
    if not entrypoint.exists():
        pytest.skip(f"{entrypoint.relative_to(ROOT)} is not written yet")
    assert entrypoint.is_file()
