"""Engagement's projections: the one list the runtime runs and `rapport audit replay` rebuilds.

Add every new projection here; the bootstrap and the auditors both read this tuple.
"""

from services.engagement.projections.coach_relationship import coach_relationship
from services.engagement.projections.relationship_view import relationship_view
from services.engagement.projections.stage_view import stage_view
from services.engagement.projections.trust_view import trust_view

PROJECTIONS = (stage_view, trust_view, relationship_view, coach_relationship)
