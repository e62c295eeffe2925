"""The kernel's SQL migrations, `NNN_name.sql`, applied in order once per schema."""

__all__: list[str] = []
