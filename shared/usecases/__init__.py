"""Use cases over ports: the ports themselves, the command runner, the application service and the
one access policy."""

__all__: list[str] = []
