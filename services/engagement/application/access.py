"""Who may do what on an engagement (contract sections 2, 3 and 7), in the kernel's one
policy: its commands by who they are meant for, its views, a coach's listings and roll-up."""

from __future__ import annotations

from shared.usecases.access import ADMINS, READERS, SUPERVISOR_OF_ANY, Rule, party

__all__ = ["ACCESS", "COMMANDS", "LISTS_COACH", "READS", "READS_ROLLUP"]

# Who may send a command: the engagement's coach, its client, either of them, or anyone who
# may report a boundary violation (coach, client, the engagement's supervisor). Admins always.
COMMANDS: dict[str, Rule] = {
    "coach": ADMINS | party("coach"),
    "client": ADMINS | party("client"),
    "party": ADMINS | party("coach", "client"),
    "reporter": ADMINS | party("coach", "client", "supervisor"),
}
READS = READERS | party("coach", "client", "supervisor")
"""An engagement's views: its coach, client and supervisor, auditors and admins."""
LISTS_COACH = READERS | party("coach")
"""A coach's engagements: that coach, auditors and admins."""
READS_ROLLUP = LISTS_COACH | SUPERVISOR_OF_ANY
"""A coach's relationship roll-up: also a supervisor of one of the coach's engagements."""

ACCESS: dict[str, Rule] = {
    **{f"command for the {who}": rule for who, rule in COMMANDS.items()},
    "read an engagement": READS,
    "list a coach's engagements": LISTS_COACH,
    "read a coach's roll-up": READS_ROLLUP,
}
