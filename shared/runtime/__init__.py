"""Running a service: settings, logs, its life from start to stop, the server."""

__all__: list[str] = []
