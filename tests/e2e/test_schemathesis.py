"""Property-based tests of each service against its own OpenAPI document (schemathesis).

For every operation, a bounded, derandomized number of generated requests (half of them on a
real engagement, half on generated ids) is sent with an admin token; every answer must be no
server error, carry a status the operation documents, and match that status's schema and media
type. The services run in this test's event loop, so the synchronous schemathesis calls run in
a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rapport.registry import SERVICES
from tests.e2e.engagement_support import open_engagement
from tests.support import Stack, auth

EXAMPLES_PER_OPERATION = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def fuzz(base_url: str, headers: dict[str, str], known: dict[str, str]) -> list[str]:
    """Every operation of one service's OpenAPI, fuzzed; the failures, described."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        fixed = {name: value for name, value in known.items() if name in names}
        strategy = operation.as_strategy(headers=headers)
        if fixed:
            strategy = st.one_of(
                operation.as_strategy(headers=headers, path_parameters=fixed), strategy
            )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            if isinstance(case.body, dict) and isinstance(case.body.get("recipient"), str):
                # never a `*` webhook: it would receive every other test's notifications
                case.body["recipient"] = "coach:schemathesis"
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            check()
        except Exception as failure:  # one operation's failure must not hide the others'
            failures.append(f"{operation.label}: {failure}")
    return failures


# schemathesis's own strategies use `random`; that is theirs to change, not ours.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_every_operation_of_every_service_answers_as_its_openapi_says(
    stack: Stack,
) -> None:
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        journey = await open_engagement(stack, intake, engagement, supervisor=True)
    known = {
        "engagement_id": journey.engagement_id,
        "stream_id": journey.engagement_id,
        "coach_id": journey.coach_id,
    }
    headers = auth("admin", "schemathesis")
    failures: list[str] = []
    for name in SERVICES:
        found = await asyncio.to_thread(fuzz, stack.url(name), headers, known)
        failures += [f"{name} {failure}" for failure in found]
    assert not failures, "\n\n".join(failures)
