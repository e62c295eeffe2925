"""Notifications' HTTP routes (contract section 3, notifications)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from pydantic import Field, field_validator

from services.notifications.application.services import NotificationService, RegisterWebhook
from services.notifications.domain.webhooks import MAX_URL_LENGTH, url_problem
from shared.security.tokens import Principal
from shared.http.bearer import authenticated
from shared.usecases.commands import Reply
from shared.http.routes import CommandRoute, Edge, add_command_routes
from shared.http.schemas import CommandAccepted, RequestBody

RECIPIENT_PATTERN = r"^(\*|(coach|client|supervisor):[A-Za-z0-9_.:@-]{1,100})$"

Recipient = Annotated[
    str,
    Query(
        min_length=1,
        max_length=120,
        pattern=RECIPIENT_PATTERN,
        description="coach:<id>, client:<id>, supervisor:<id> or *",
    ),
]


class WebhookIn(RequestBody):
    recipient: Annotated[str, Field(max_length=120, pattern=RECIPIENT_PATTERN)]
    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_LENGTH,
            description="An absolute http(s) URL: a host name or IP literal, a port 1-65535,"
            " no credentials, no whitespace or control characters.",
        ),
    ]
    secret: Annotated[str, Field(min_length=1, max_length=512)]

    @field_validator("url")
    @classmethod
    def webhook_url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url


class WebhookOut(CommandAccepted):
    webhook_id: str
    recipient: str
    url: str


COMMAND_ROUTES = (
    CommandRoute("/v1/webhooks", RegisterWebhook, "recipient", WebhookIn, response=WebhookOut),
)


def build_routes(app: FastAPI, service: Callable[[], NotificationService], edge: Edge) -> None:
    """Attach the notifications routes; `service` gives the running application object."""
    caller = authenticated(edge.tokens)

    add_command_routes(app, COMMAND_ROUTES, edge=edge, service=service, tags=["notifications"])

    @app.get("/v1/notifications", tags=["notifications"])
    async def list_notifications(
        recipient: Recipient,
        limit: Annotated[
            int, Query(ge=1, le=10_000, description="At most this many, earliest due first.")
        ] = 1000,
        principal: Principal = Depends(caller),
    ) -> Reply:
        """A recipient's notifications; `*` (admin, auditor) lists every recipient's."""
        return await service().list_for(principal, recipient, limit=limit)
