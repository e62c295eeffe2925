"""The HTTP edge every service shares: the request pipeline, command routes, problem+json, health
and metrics."""

__all__: list[str] = []
