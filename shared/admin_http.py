"""`/v1/admin/parked`: the events a projection or consumer of this service could not apply.

Every service serves the same three routes: the list (admin, auditor), and `retry` / `skip`
of one entry (admin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query

from shared.auth import PermissionDenied, Principal
from shared.http import authenticated
from shared.parked_admin import ParkedEvents

__all__ = ["admin_routes"]

READERS = frozenset({"admin", "auditor"})
ParkedId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The parked entry's id.")]


def admin_routes(
    app: FastAPI, parked: Callable[[], ParkedEvents], secret: Callable[[], str]
) -> None:
    """Attach the parked-event routes to a service's app."""
    caller = authenticated(secret)

    def admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise PermissionDenied("only admins act on parked events")

    @app.get(
        "/v1/admin/parked",
        tags=["admin"],
        summary="Events a projection or consumer could not apply (admin, auditor)",
    )
    async def list_parked(
        status: Annotated[
            Literal["parked", "retried", "skipped"] | None,
            Query(description="Only entries with this status (default: all)."),
        ] = None,
        after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Page on.")] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        principal: Principal = Depends(caller),
    ) -> dict[str, Any]:
        if principal.role not in READERS:
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
