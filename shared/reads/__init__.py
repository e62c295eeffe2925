"""The read side: keeping projections caught up, rebuilding them, auditing a log."""

__all__: list[str] = []
