"""Who may do what on the intake (contract sections 2 and 3), in the kernel's one policy."""

from __future__ import annotations

from shared.usecases.access import ADMINS, READERS, Rule, party

__all__ = ["ACCESS", "ERASES", "READS", "RUNS"]

RUNS = ADMINS | party("coach")
"""Starting and running an intake: its coach, or an admin."""
READS = READERS | party("coach")
"""Reading an intake: its coach, auditors and admins."""
ERASES = ADMINS
"""Erasing a client."""

ACCESS: dict[str, Rule] = {"run an intake": RUNS, "read an intake": READS, "erase": ERASES}
