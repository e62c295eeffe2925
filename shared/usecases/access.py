"""Who may do what: the one access policy of every service (contract section 2), pure.

A caller is a `Principal` (role and id). Admins may do anything; auditors read everything and
write nothing; a coach, client or supervisor acts and reads only as a party to what is asked
(an engagement names its coach, client and supervisor). Notifications and webhooks are
addressed to a recipient key, `<role>:<id>`, the same key that scopes a caller's
`Idempotency-Key`s.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.security.tokens import Principal, Role

__all__ = [
    "EVERY_RECIPIENT",
    "READS_EVERYTHING",
    "Parties",
    "Who",
    "may_act",
    "may_act_for_coach",
    "may_list_coach_engagements",
    "may_list_notifications",
    "may_manage_parked",
    "may_read",
    "may_read_coach_rollup",
    "may_read_intake",
    "may_register_webhook",
    "reads_everything",
    "recipient_key",
]

# Roles that read every engagement, view, log and parked event (and write nothing but what
# an admin may).
READS_EVERYTHING: frozenset[Role] = frozenset({"admin", "auditor"})
# The recipient `*`: every recipient's notifications (admins register for it, readers list it).
EVERY_RECIPIENT = "*"
# Roles that receive notifications, and so may register webhooks for themselves.
RECIPIENT_ROLES: frozenset[Role] = frozenset({"coach", "client", "supervisor"})

# Who may send a command: the engagement's coach, its client, either of them, or anyone who
# may report a boundary violation (coach, client, the engagement's supervisor). Admins always.
Who = Literal["coach", "client", "party", "reporter"]


def recipient_key(principal: Principal) -> str:
    """`<role>:<id>`: whom notifications for this caller are addressed to, and the prefix of
    the caller's idempotency scopes."""
    return f"{principal.role}:{principal.sub}"


def reads_everything(principal: Principal) -> bool:
    return principal.role in READS_EVERYTHING


@dataclass(frozen=True)
class Parties:
    """The people an engagement (or an intake, before it has a client) belongs to."""

    coach_id: str | None
    client_id: str | None = None
    supervisor_id: str | None = None

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Parties:
        """The parties a view names."""
        return cls(
            document.get("coach_id"), document.get("client_id"), document.get("supervisor_id")
        )

    def includes(self, principal: Principal, role: Role) -> bool:
        """Whether the caller is this engagement's party in `role`."""
        party = {
            "coach": self.coach_id,
            "client": self.client_id,
            "supervisor": self.supervisor_id,
        }.get(role)
        return principal.role == role and party is not None and principal.sub == party


def may_act_for_coach(principal: Principal, coach_id: str | None) -> bool:
    """An admin, or the coach named."""
    return principal.is_admin or Parties(coach_id).includes(principal, "coach")


def may_act(principal: Principal, parties: Parties, who: Who) -> bool:
    """Whether the caller may send a command meant for `who` of these parties."""
    if principal.is_admin:
        return True
    coach = parties.includes(principal, "coach")
    client = parties.includes(principal, "client")
    match who:
        case "coach":
            return coach
        case "client":
            return client
        case "party":
            return coach or client
        case "reporter":
            return coach or client or parties.includes(principal, "supervisor")
    return False


def may_read(principal: Principal, parties: Parties) -> bool:
    """An engagement's views: its coach, client and supervisor, auditors and admins."""
    return reads_everything(principal) or any(
        parties.includes(principal, role) for role in ("coach", "client", "supervisor")
    )


def may_read_intake(principal: Principal, coach_id: str | None) -> bool:
    """An intake: its coach, auditors and admins."""
    return reads_everything(principal) or may_act_for_coach(principal, coach_id)


def may_list_coach_engagements(principal: Principal, coach_id: str) -> bool:
    """A coach's engagements: that coach, auditors and admins."""
    return reads_everything(principal) or Parties(coach_id).includes(principal, "coach")


def may_read_coach_rollup(
    principal: Principal, coach_id: str, supervisors: Collection[str]
) -> bool:
    """A coach's relationship roll-up: that coach, a supervisor of one of the coach's
    engagements, auditors and admins."""
    return may_list_coach_engagements(principal, coach_id) or (
        principal.role == "supervisor" and principal.sub in supervisors
    )


def may_list_notifications(principal: Principal, recipient: str) -> bool:
    """A recipient's notifications: that recipient, auditors and admins (also for `*`)."""
    return reads_everything(principal) or recipient == recipient_key(principal)


def may_register_webhook(principal: Principal, recipient: str) -> bool:
    """Admins for anyone (and `*`); a coach, client or supervisor only for themselves."""
    if principal.is_admin:
        return True
    return principal.role in RECIPIENT_ROLES and recipient == recipient_key(principal)


def may_manage_parked(principal: Principal) -> bool:
    """Retrying or skipping a parked event: admins only (auditors list them)."""
    return principal.is_admin
