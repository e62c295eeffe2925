"""Errors the domain raises; the HTTP edge maps them to problem+json statuses."""

from __future__ import annotations

__all__ = [
    "DomainError",
    "ForbiddenByState",
    "InvalidCommand",
    "NotFound",
]


class DomainError(Exception):
    """A command the rules refuse."""

    status = 409

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ForbiddenByState(DomainError):
    """The current state forbids this command (wrong stage, already done, ...): 409."""


class InvalidCommand(DomainError):
    """The command is well-formed but its values break a rule: 422."""

    status = 422


class NotFound(DomainError):
    """The addressed thing does not exist: 404."""

    status = 404
