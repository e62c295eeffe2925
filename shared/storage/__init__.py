"""PostgreSQL: the only package that writes SQL for the kernel's tables (events, checkpoints,
documents, parked, idempotency keys, keys)."""

__all__: list[str] = []
