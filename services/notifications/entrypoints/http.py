"""Notifications' HTTP routes (contract section 3, notifications)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Query
from pydantic import Field, field_validator

from services.notifications.application.handlers import NotificationService
from shared.auth import Principal
from shared.commands import Body, IdempotencyKey
from shared.http import IDEMPOTENCY_HEADER, authenticated
from shared.schemas import Body as RequestBody
from shared.schemas import CommandAccepted

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
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    secret: Annotated[str, Field(min_length=1, max_length=512)]

    @field_validator("url")
    @classmethod
    def http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http or https URL")
        if any(character.isspace() for character in url):
            raise ValueError("must not contain whitespace")
        return url


class WebhookOut(CommandAccepted):
    webhook_id: str
    recipient: str
    url: str


def build_routes(
    app: FastAPI, service: Callable[[], NotificationService], jwt_secret: Callable[[], str]
) -> None:
    """Attach the notifications routes; `service` gives the running application object."""
    caller = authenticated(jwt_secret)

    @app.post("/v1/webhooks", status_code=201, response_model=WebhookOut, tags=["notifications"])
    async def register_webhook(
        body: WebhookIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        idempotency = IdempotencyKey.of(
            f"{principal.role}:{principal.sub}:webhooks",
            idempotency_key,
            body.model_dump(mode="json"),
        )
        return await service().register_webhook(
            principal, body.recipient, body.url, body.secret, idempotency
        )

    @app.get("/v1/notifications", tags=["notifications"])
    async def list_notifications(
        recipient: Recipient,
        limit: Annotated[
            int, Query(ge=1, le=10_000, description="At most this many, earliest due first.")
        ] = 1000,
        principal: Principal = Depends(caller),
    ) -> Body:
        """A recipient's notifications; `*` (admin, auditor) lists every recipient's."""
        return await service().list_for(principal, recipient, limit=limit)
