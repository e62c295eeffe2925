"""Intake's projections: the one list the runtime runs and `rapport audit replay` rebuilds."""

from services.intake.projections.intake_view import intake_view

PROJECTIONS = (intake_view,)
