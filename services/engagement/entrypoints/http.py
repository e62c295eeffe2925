"""Engagement's HTTP routes (contract section 3, engagement)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Path

from services.engagement.application.handlers import EngagementService
from shared.auth import Principal
from shared.commands import Body
from shared.http import authenticated
from shared.service import ServiceCore

EngagementId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


def build_routes(app: FastAPI, current: Callable[[], ServiceCore]) -> None:
    """Attach the engagement routes; `current` gives the running service core."""
    caller = authenticated(lambda: current().jwt_secret)

    def service() -> EngagementService:
        core = current()
        return EngagementService(core.store, core.vault, core.clock)

    @app.get("/v1/engagements/{engagement_id}", tags=["engagement"])
    async def read_engagement(
        engagement_id: EngagementId, principal: Principal = Depends(caller)
    ) -> Body:
        return await service().read(principal, engagement_id)
