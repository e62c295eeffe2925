"""Notifications' projections: the one list the runtime runs and `rapport audit replay` rebuilds.

Add every new projection here; the bootstrap and the auditors both read this tuple.
"""

from services.notifications.projections.schedule import schedule

PROJECTIONS = (schedule,)
