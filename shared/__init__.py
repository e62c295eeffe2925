"""Rapport's shared kernel: envelope, event store, outbox, inbox, projections, auth, crypto."""

__all__: list[str] = []
