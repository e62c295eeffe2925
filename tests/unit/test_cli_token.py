"""`rapport token` issues tokens the services accept: within their lifetime cap, for a
subject they take."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from typer.testing import CliRunner

from rapport.cli import app
from shared.security.tokens import TokenVerifier
from tests.support import JWT_SECRET


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["token", *args, "--secret", JWT_SECRET], env=env)
    return result.exit_code, result.stdout.strip(), result.stderr


def test_a_default_token_lives_a_day_and_the_services_accept_it() -> None:
    code, token, _ = run("--role", "coach", "--sub", "coach-1")
    assert code == 0
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert TokenVerifier(JWT_SECRET).verify(token).sub == "coach-1"


def test_a_lifetime_past_the_cap_is_refused_before_a_token_is_printed() -> None:
    code, token, error = run("--role", "admin", "--sub", "ops", "--hours", "25")
    assert (code, token) == (2, "")
    assert "RAPPORT_MAX_TOKEN_TTL" in error


def test_the_cap_is_the_environments() -> None:
    env = {"RAPPORT_MAX_TOKEN_TTL": "3600"}
    assert run("--role", "admin", "--sub", "ops", env=env)[0] == 2
    code, token, _ = run("--role", "admin", "--sub", "ops", "--hours", "1", env=env)
    assert code == 0
    assert TokenVerifier(JWT_SECRET, max_ttl=timedelta(hours=1)).verify(token).sub == "ops"


@pytest.mark.parametrize("sub", ["coach\x01", "a" * 201, "admin\u202eops"])
def test_a_subject_the_services_would_refuse_is_refused(sub: str) -> None:
    code, token, error = run("--role", "coach", "--sub", sub)
    assert (code, token) == (2, "")
    assert "--sub" in error
