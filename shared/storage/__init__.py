"""PostgreSQL: the only package that writes SQL for the kernel's tables (events, checkpoints,
documents, parked, outbox offsets, projection runners, idempotency keys, keys)."""

__all__: list[str] = []
