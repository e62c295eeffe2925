"""Which failures are transient, and the one way to try again."""

__all__: list[str] = []
