"""Who is calling and what is secret: bearer tokens, per-record encryption of personal data."""

__all__: list[str] = []
