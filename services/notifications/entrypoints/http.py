"""Notifications' HTTP routes (contract section 3, notifications)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Query

from services.notifications.application.handlers import NotificationService
from shared.auth import Principal
from shared.commands import Body
from shared.http import authenticated
from shared.service import ServiceCore

Recipient = Annotated[
    str,
    Query(
        min_length=1,
        max_length=120,
        pattern=r"^(\*|(coach|client|supervisor):[A-Za-z0-9_.:@-]+)$",
        description="coach:<id>, client:<id>, supervisor:<id> or *",
    ),
]


def build_routes(app: FastAPI, current: Callable[[], ServiceCore]) -> None:
    """Attach the notifications routes; `current` gives the running service core."""
    caller = authenticated(lambda: current().jwt_secret)

    def service() -> NotificationService:
        core = current()
        return NotificationService(core.store, core.vault, core.clock)

    @app.get("/v1/notifications", tags=["notifications"])
    async def list_notifications(
        recipient: Recipient, principal: Principal = Depends(caller)
    ) -> Body:
        return await service().list_for(principal, recipient)
