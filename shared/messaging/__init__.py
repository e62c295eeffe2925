"""Kafka: topics, the contract's headers, the outbox relay and the idempotent inbox."""

__all__: list[str] = []
