"""`/v1/admin/parked`: the events a projection or consumer of this service could not apply.

Every service serves the same three routes: the list (admin, auditor), and `retry` / `skip`
of one entry (admin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Path, Query

from shared.http.bearer import authenticated
from shared.security.tokens import PermissionDenied, Principal, TokenVerifier
from shared.storage.parking import Status
from shared.usecases.access import ADMINS, Subject, reads_everything, require

__all__ = ["ParkedAdmin", "admin_routes"]


class ParkedAdmin(Protocol):
    """What the parked-event routes need of a service (`shared.runtime.parked.ParkedEvents`)."""

    async def list(self, *, status: Status | None, after_id: int, limit: int) -> dict[str, Any]:
        """The entries, oldest first."""
        ...

    async def retry(self, parked_id: int) -> dict[str, Any]:
        """Apply the entry's event now."""
        ...

    async def skip(self, parked_id: int) -> dict[str, Any]:
        """Give up on the entry."""
        ...


ParkedId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The parked entry's id.")]


def admin_routes(
    app: FastAPI, parked: Callable[[], ParkedAdmin], tokens: Callable[[], TokenVerifier]
) -> None:
    """Attach the parked-event routes to a service's app."""
    caller = authenticated(tokens)

    def admin(principal: Principal) -> None:
        require(principal, ADMINS, Subject(), "only admins act on parked events")

    @app.get(
        "/v1/admin/parked",
        tags=["admin"],
        summary="Events a projection or consumer could not apply (admin, auditor)",
    )
    async def list_parked(
        status: Annotated[
            Status | None,
            Query(description="Only entries with this status (default: all)."),
        ] = None,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Page on.")] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        principal: Principal = Depends(caller),
    ) -> dict[str, Any]:
        if not reads_everything(principal):
            raise PermissionDenied("only admins and auditors read parked events")
        return await parked().list(status=status, after_id=after_id, limit=limit)

    @app.post(
        "/v1/admin/parked/{parked_id}/retry",
        tags=["admin"],
        summary="Apply a parked event now (admin); 409 if it still cannot be applied",
    )
    async def retry(parked_id: ParkedId, principal: Principal = Depends(caller)) -> dict[str, Any]:
        admin(principal)
        return await parked().retry(parked_id)

    @app.post(
        "/v1/admin/parked/{parked_id}/skip",
        tags=["admin"],
        summary="Give up on a parked event (admin)",
    )
    async def skip(parked_id: ParkedId, principal: Principal = Depends(caller)) -> dict[str, Any]:
        admin(principal)
        return await parked().skip(parked_id)
