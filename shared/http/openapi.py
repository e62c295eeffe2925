"""OpenAPI: every authenticated route declares the problem+json answers it can give."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from shared.http.problems import PROBLEM, title_of

__all__ = [
    "COMMAND_PROBLEMS",
    "PROBLEM_SCHEMA",
    "READ_PROBLEMS",
    "document_problems",
    "problem_responses",
]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# What an authenticated command / read can answer besides success (contract section 3).
COMMAND_PROBLEMS = (400, 401, 403, 404, 409, 413, 415, 422)
READ_PROBLEMS = (401, 403, 404, 422)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring problem+json answers with these statuses."""
    return {
        status: {
            "description": title_of(status),
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def document_problems(app: FastAPI) -> None:
    """Declare in OpenAPI the problem+json answers of every authenticated (`/v1/`) route, so
    the statuses a client can meet are the statuses documented."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
            continue
        writes = bool((route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})
        declared = problem_responses(*(COMMAND_PROBLEMS if writes else READ_PROBLEMS))
        route.responses = {**declared, **route.responses}
    app.openapi_schema = None
