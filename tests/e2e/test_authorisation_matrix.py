"""Every route of every service, for every kind of caller, with the status each must get.

Routes are read from the running apps, so a new endpoint without a row in `EXPECTED` fails
the test. Commands that a caller may send are sent to a terminated engagement (and a committed
intake), where the rules answer 409: the caller got past the access check, and nothing is
written. Refusals (401, 403) are problem+json with a generic detail and no data of the resource.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from starlette.routing import Route

from rapport.registry import SERVICES
from shared.http.api_docs import ASSETS, ASSETS_PATH
from tests.e2e.engagement_support import DUE, HELD
from tests.support import JWT_SECRET, Stack, auth, eventually, start_intake_journey, token

# The callers of the matrix: a role, and whether it is a party of the engagement addressed.
CALLERS = (
    "coach_own",
    "coach_other",
    "client_own",
    "client_other",
    "supervisor_own",
    "supervisor_other",
    "auditor",
    "admin",
)
# Callers whose token (or header) is no good: 401 on every authenticated route.
BAD_CREDENTIALS = (
    "no_token",
    "expired_token",
    "token_signed_with_another_secret",
    "token_with_an_unknown_role",
    "token_without_expiry",
    "unsigned_token",
    "malformed_token",
    "basic_scheme",
)
PUBLIC = (
    "/health",
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
    "/docs",
    *(f"{ASSETS_PATH}/{name}" for name in ASSETS),
)


def row(*statuses: int) -> dict[str, int]:
    assert len(statuses) == len(CALLERS)
    return dict(zip(CALLERS, statuses, strict=True))


#                       coach  coach  client client  sup.   sup.
#                       own    other  own    other   own    other  auditor admin
COACH_COMMAND = row(409, 403, 403, 403, 403, 403, 403, 409)
CLIENT_COMMAND = row(403, 403, 409, 403, 403, 403, 403, 409)
PARTY_COMMAND = row(409, 403, 409, 403, 403, 403, 403, 409)
REPORTER_COMMAND = row(409, 403, 409, 403, 409, 403, 403, 409)
ENGAGEMENT_READ = row(200, 403, 200, 403, 200, 403, 200, 200)
AUDIT_READ = row(403, 403, 403, 403, 403, 403, 200, 200)
# An admin action on a parked event that does not exist: past the access check, 404.
PARKED_ACTION = row(403, 403, 403, 403, 403, 403, 403, 404)
PARKED = {
    (service, method, f"/v1/admin/parked{path}"): expected
    for service in SERVICES
    for method, path, expected in (
        ("GET", "", AUDIT_READ),
        ("POST", "/{parked_id}/retry", PARKED_ACTION),
        ("POST", "/{parked_id}/skip", PARKED_ACTION),
    )
}

EXPECTED: dict[tuple[str, str, str], dict[str, int]] = {
    ("intake", "POST", "/v1/intakes"): row(201, 403, 403, 403, 403, 403, 403, 201),
    ("intake", "POST", "/v1/intakes/{engagement_id}/assessments"): COACH_COMMAND,
    ("intake", "POST", "/v1/intakes/{engagement_id}/goals"): COACH_COMMAND,
    ("intake", "POST", "/v1/intakes/{engagement_id}/agreement"): COACH_COMMAND,
    ("intake", "POST", "/v1/intakes/{engagement_id}/commitment"): COACH_COMMAND,
    ("intake", "GET", "/v1/intakes/{engagement_id}"): row(200, 403, 403, 403, 403, 403, 200, 200),
    ("intake", "POST", "/v1/clients/{client_id}/erasure"): row(
        403, 403, 403, 403, 403, 403, 403, 201
    ),
    ("intake", "GET", "/v1/audit/streams/{stream_id}/events"): AUDIT_READ,
    **{
        ("engagement", "POST", f"/v1/engagements/{{engagement_id}}/{path}"): COACH_COMMAND
        for path in (
            "plan",
            "homework",
            "homework/{homework_id}/verification",
            "sessions",
            "boundary-violations/{violation_id}/resolution",
            "boundary-reviews",
            "transformation",
            "graduation",
            "graduate",
            "follow-ups",
            "termination",
        )
    },
    ("engagement", "POST", "/v1/engagements/{engagement_id}/homework/{homework_id}/claim"): (
        CLIENT_COMMAND
    ),
    ("engagement", "POST", "/v1/engagements/{engagement_id}/testimonial"): CLIENT_COMMAND,
    ("engagement", "POST", "/v1/engagements/{engagement_id}/self-checks"): PARTY_COMMAND,
    ("engagement", "POST", "/v1/engagements/{engagement_id}/relationship-checkins"): (
        PARTY_COMMAND
    ),
    ("engagement", "POST", "/v1/engagements/{engagement_id}/boundary-violations"): (
        REPORTER_COMMAND
    ),
    ("engagement", "GET", "/v1/engagements/{engagement_id}"): ENGAGEMENT_READ,
    ("engagement", "GET", "/v1/engagements/{engagement_id}/trust"): ENGAGEMENT_READ,
    ("engagement", "GET", "/v1/engagements/{engagement_id}/relationship"): ENGAGEMENT_READ,
    # that coach, a supervisor of one of the coach's engagements, auditor, admin
    ("engagement", "GET", "/v1/coaches/{coach_id}/relationship"): row(
        200, 403, 403, 403, 200, 403, 200, 200
    ),
    ("engagement", "GET", "/v1/coaches/{coach_id}/engagements"): row(
        200, 403, 403, 403, 403, 403, 200, 200
    ),
    ("engagement", "GET", "/v1/audit/streams/{stream_id}/events"): AUDIT_READ,
    ("notifications", "POST", "/v1/webhooks"): row(201, 403, 201, 403, 201, 403, 403, 201),
    ("notifications", "GET", "/v1/notifications"): row(200, 403, 200, 403, 200, 403, 200, 200),
    ("notifications", "GET", "/v1/audit/streams/{stream_id}/events"): AUDIT_READ,
    **PARKED,
}

# A valid body for each command, so that only the caller decides the answer.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/intakes": {"coach_id": "", "client": {"name": "Matrix Person", "email": "m@x.example"}},
    "/v1/intakes/{engagement_id}/assessments": {"instrument": "w", "scores": {"energy": 3}},
    "/v1/intakes/{engagement_id}/goals": {
        "title": "g",
        "measure": "m",
        "baseline": 1,
        "target": 2,
    },
    "/v1/intakes/{engagement_id}/agreement": {
        "role_explained": True,
        "confidentiality_limits_acknowledged": True,
        "signed_by_client": True,
        "signed_by_coach": True,
        "contact_channels": ["video"],
        "contact_hours": "any",
        "session_cadence_days": 7,
    },
    "/v1/engagements/{engagement_id}/homework": {"title": "h", "due_at": DUE},
    "/v1/engagements/{engagement_id}/homework/{homework_id}/claim": {"note": "done"},
    "/v1/engagements/{engagement_id}/homework/{homework_id}/verification": {"outcome": "confirmed"},
    "/v1/engagements/{engagement_id}/sessions": {"held_at": HELD, "duration_minutes": 50},
    "/v1/engagements/{engagement_id}/boundary-violations": {
        "violated_by": "client",
        "kind": "other",
        "description": "d",
    },
    "/v1/engagements/{engagement_id}/boundary-violations/{violation_id}/resolution": {"steps": "s"},
    "/v1/engagements/{engagement_id}/boundary-reviews": {"notes": "n"},
    "/v1/engagements/{engagement_id}/transformation": {"summary": "s"},
    "/v1/engagements/{engagement_id}/self-checks": {"on_track": True},
    "/v1/engagements/{engagement_id}/relationship-checkins": {
        "ratings": {
            "empathy": 4,
            "active_listening": 4,
            "non_judgment": 4,
            "confidentiality": 4,
            "collaboration": 4,
            "boundaries": 4,
        }
    },
    "/v1/engagements/{engagement_id}/graduation": {"session_cadence_days": 30},
    "/v1/engagements/{engagement_id}/follow-ups": {"scores": {"energy": 4}},
    "/v1/engagements/{engagement_id}/testimonial": {"text": "t", "consent_to_publish": False},
    "/v1/engagements/{engagement_id}/termination": {"reason": "mutual"},
}


@dataclass
class World:
    """Engagement A (terminated) with its coach, client and supervisor; strangers to it; and
    a client nobody needs, for the erasure."""

    engagement_id: str
    coach_id: str
    client_id: str
    supervisor_id: str
    homework_id: str
    violation_id: str
    other_coach: str
    other_client: str
    other_supervisor: str
    erasable_client: str

    def subject(self, caller: str) -> tuple[Any, str]:
        role, _, whose = caller.partition("_")
        if role in ("auditor", "admin"):
            return role, f"{role}-{self.coach_id}"
        own = {"coach": self.coach_id, "client": self.client_id, "supervisor": self.supervisor_id}
        other = {
            "coach": self.other_coach,
            "client": self.other_client,
            "supervisor": self.other_supervisor,
        }
        return role, (own if whose == "own" else other)[role]

    def recipient(self, caller: str) -> str:
        """The recipient a caller names: engagement A's party of the caller's role (so itself
        for `_own` callers, someone else for `_other` ones), the coach for auditor and admin."""
        role = caller.partition("_")[0]
        if role in ("coach", "client", "supervisor"):
            own = {"coach": self.coach_id, "client": self.client_id}
            return f"{role}:{own.get(role, self.supervisor_id)}"
        return f"coach:{self.coach_id}"

    def ids(self) -> list[str]:
        return [
            self.engagement_id,
            self.coach_id,
            self.client_id,
            self.supervisor_id,
            self.homework_id,
            self.violation_id,
            self.erasable_client,
        ]


def credentials(caller: str, world: World) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": world.coach_id, "role": "admin", "exp": now + timedelta(hours=1)}
    match caller:
        case "no_token":
            return {}
        case "expired_token":
            return {"Authorization": f"Bearer {token('admin', 'a', ttl=timedelta(seconds=-60))}"}
        case "token_signed_with_another_secret":
            other = token("admin", "a", secret="another-secret-of-at-least-32-bytes!")
            return {"Authorization": f"Bearer {other}"}
        case "token_with_an_unknown_role":
            bad = jwt.encode({**claims, "role": "root"}, JWT_SECRET, algorithm="HS256")
            return {"Authorization": f"Bearer {bad}"}
        case "token_without_expiry":
            bad = jwt.encode({"sub": "a", "role": "admin"}, JWT_SECRET, algorithm="HS256")
            return {"Authorization": f"Bearer {bad}"}
        case "unsigned_token":
            bad = jwt.encode(claims, None, algorithm="none")
            return {"Authorization": f"Bearer {bad}"}
        case "malformed_token":
            return {"Authorization": "Bearer not.a.jwt"}
        case "basic_scheme":
            return {"Authorization": "Basic YWRtaW46YWRtaW4="}
    role, sub = world.subject(caller)
    return auth(role, sub)


def request_for(
    world: World, caller: str, method: str, template: str
) -> tuple[str, dict[str, Any] | None, dict[str, str]]:
    """The URL, JSON body and query of one cell of the matrix."""
    path = template.format(
        engagement_id=world.engagement_id,
        stream_id=world.engagement_id,
        homework_id=world.homework_id,
        violation_id=world.violation_id,
        coach_id=world.coach_id,
        client_id=world.erasable_client,
        parked_id=2**62,
    )
    params: dict[str, str] = {}
    body: dict[str, Any] | None = None
    if template == "/v1/intakes":
        body = {**BODIES[template], "coach_id": world.coach_id}
    elif template == "/v1/webhooks":
        body = {"recipient": world.recipient(caller), "url": "http://127.0.0.1:9/h", "secret": "s"}
    elif template == "/v1/notifications":
        params = {"recipient": world.recipient(caller)}
    elif method == "POST":
        body = BODIES.get(template)
    return path, body, params


def routes_of(stack: Stack, service: str) -> list[tuple[str, str]]:
    found = []
    for route in stack.services[service].app.routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, route.path))
    return found


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    tag = uuid.uuid4().hex[:8]
    coach, supervisor = f"coach-a-{tag}", f"sup-a-{tag}"
    other_coach = f"coach-b-{tag}"
    async with stack.client("intake") as intake:
        started = await start_intake_journey(intake, coach, supervisor_id=supervisor)
        other = await start_intake_journey(intake, other_coach, supervisor_id=f"sup-b-{tag}")
        spare = await intake.post(
            "/v1/intakes",
            json={"coach_id": other_coach, "client": {"name": "Spare", "email": "s@x.example"}},
            headers=auth("coach", other_coach),
        )
        assert spare.status_code == 201, spare.text
    engagement_id = started["engagement_id"]
    async with stack.client("engagement") as engagement:
        url = f"/v1/engagements/{engagement_id}"

        async def opened() -> bool:
            response = await engagement.get(url, headers=auth("admin", "ops"))
            return response.status_code == 200

        await eventually(opened)
        coach_headers = auth("coach", coach)
        homework = await engagement.post(
            f"{url}/homework", json={"title": "h", "due_at": DUE}, headers=coach_headers
        )
        violation = await engagement.post(
            f"{url}/boundary-violations",
            json={"violated_by": "client", "kind": "other", "description": "d"},
            headers=coach_headers,
        )
        ended = await engagement.post(
            f"{url}/termination", json={"reason": "mutual"}, headers=coach_headers
        )
        assert {homework.status_code, violation.status_code, ended.status_code} == {201}
    async with stack.client("notifications") as notifications:

        async def planned() -> bool:
            response = await notifications.get(
                f"/v1/audit/streams/{engagement_id}/events", headers=auth("admin", "ops")
            )
            return response.status_code == 200

        await eventually(planned)
    return World(
        engagement_id=engagement_id,
        coach_id=coach,
        client_id=started["client_id"],
        supervisor_id=supervisor,
        homework_id=homework.json()["homework_id"],
        violation_id=violation.json()["violation_id"],
        other_coach=other_coach,
        other_client=other["client_id"],
        other_supervisor=f"sup-b-{tag}",
        erasable_client=spare.json()["client_id"],
    )


async def stream_versions(stack: Stack, world: World) -> tuple[int, int]:
    versions = []
    for service in ("intake", "engagement"):
        store = stack.core(service).store
        async with store.pool.acquire() as conn:
            versions.append(int(await store.version(conn, world.engagement_id)))
    return versions[0], versions[1]


def assert_refusal_reveals_nothing(response: httpx.Response, status: int, world: World) -> None:
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == status
    for value in world.ids():
        assert value not in response.text, value


async def test_every_route_answers_every_kind_of_caller_as_the_matrix_says(
    stack: Stack, world: World
) -> None:
    before = await stream_versions(stack, world)
    missing, wrong = [], []
    cells = 0
    for service in SERVICES:
        async with stack.client(service) as http:
            for method, template in routes_of(stack, service):
                if template in PUBLIC:
                    expected = dict.fromkeys((*CALLERS, *BAD_CREDENTIALS), 200)
                elif (service, method, template) in EXPECTED:
                    expected = {
                        **EXPECTED[(service, method, template)],
                        **dict.fromkeys(BAD_CREDENTIALS, 401),
                    }
                else:
                    missing.append(f"{service} {method} {template}")
                    continue
                for caller, status in expected.items():
                    cells += 1
                    path, body, params = request_for(world, caller, method, template)
                    response = await http.request(
                        method, path, json=body, params=params, headers=credentials(caller, world)
                    )
                    if response.status_code != status:
                        cell = f"{service} {method} {template} as {caller}"
                        wrong.append(f"{cell}: {response.status_code} (expected {status})")
                        continue
                    if status in (401, 403):
                        assert_refusal_reveals_nothing(response, status, world)
                    if status == 401:
                        assert response.headers["www-authenticate"] == "Bearer"
    assert not missing, f"routes with no expectation in the matrix: {missing}"
    assert not wrong, "\n".join(wrong)
    assert cells >= len(EXPECTED) * (len(CALLERS) + len(BAD_CREDENTIALS))
    assert await stream_versions(stack, world) == before  # refused or 409: nothing written


async def test_the_matrix_names_no_route_that_does_not_exist(stack: Stack) -> None:
    existing = {
        (service, method, template)
        for service in SERVICES
        for method, template in routes_of(stack, service)
    }
    assert set(EXPECTED) - existing == set()


async def test_only_an_admin_may_register_a_webhook_for_every_recipient(
    stack: Stack, world: World
) -> None:
    # The admin's own `*` registration is not made here: it would receive every other test's
    # notifications. Its acceptance follows from `may_register`; here everyone else is refused.
    async with stack.client("notifications") as http:
        for caller in CALLERS:
            if caller == "admin":
                continue
            response = await http.post(
                "/v1/webhooks",
                json={"recipient": "*", "url": "http://127.0.0.1:9/h", "secret": "s"},
                headers=credentials(caller, world),
            )
            assert response.status_code == 403, caller
            assert_refusal_reveals_nothing(response, 403, world)
        listed = await http.get(
            "/v1/notifications", params={"recipient": "*"}, headers=auth("coach", world.coach_id)
        )
        assert listed.status_code == 403


async def test_a_command_allowed_to_a_coach_is_refused_to_the_same_coach_on_another_engagement(
    stack: Stack, world: World
) -> None:
    async with stack.client("engagement") as http:
        answer = await http.post(
            f"/v1/engagements/{world.engagement_id}/sessions",
            json=BODIES["/v1/engagements/{engagement_id}/sessions"],
            headers=auth("coach", world.other_coach),
        )
        listing = await http.get(
            f"/v1/coaches/{world.coach_id}/engagements", headers=auth("coach", world.other_coach)
        )
        own = await http.get(
            f"/v1/coaches/{world.other_coach}/engagements",
            headers=auth("coach", world.other_coach),
        )
    assert answer.status_code == 403 and listing.status_code == 403
    assert own.status_code == 200
    assert world.engagement_id not in own.text
