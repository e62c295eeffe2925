"""The event model: envelopes and their hash chain, domain events and commands, errors, time, and
the pure folds of projections. No I/O."""

__all__: list[str] = []
