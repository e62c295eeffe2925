"""Who may do what: the one access policy of every service (contract section 2), pure.

A caller is a `Principal` (role and id). Admins may do anything; auditors read everything and
write nothing; a coach, client or supervisor acts and reads only as a party to what is asked
(an engagement names its coach, client and supervisor). Notifications and webhooks are
addressed to a recipient key, `<role>:<id>`, the same key that scopes a caller's
`Idempotency-Key`s.

The policy is made of `Rule`s, composed with `|` from the few below (`ADMINS`, `READERS`,
`party`, `RECIPIENT`, ...). Each service declares the rules of its routes once, from these, in
its `ServiceDefinition` (`access`); every check goes through `allowed` / `require` here, the
one place a rule is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from shared.security.tokens import PermissionDenied, Principal, Role

__all__ = [
    "ADMINS",
    "EVERY_RECIPIENT",
    "OWN_RECIPIENT",
    "READERS",
    "READS_EVERYTHING",
    "RECIPIENT",
    "SUPERVISOR_OF_ANY",
    "Parties",
    "Rule",
    "Subject",
    "allowed",
    "party",
    "reads_everything",
    "recipient_key",
    "require",
]

# Roles that read every engagement, view, log and parked event (and write nothing but what
# an admin may).
READS_EVERYTHING: frozenset[Role] = frozenset({"admin", "auditor"})
# The recipient `*`: every recipient's notifications (admins register for it, readers list it).
EVERY_RECIPIENT = "*"
# Roles that receive notifications, and so may register webhooks for themselves.
RECIPIENT_ROLES: frozenset[Role] = frozenset({"coach", "client", "supervisor"})


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


@dataclass(frozen=True)
class Subject:
    """What a rule is asked about: the people it belongs to (`parties`), the recipient it
    addresses, and the supervisors of a coach's engagements (for the coach's roll-up)."""

    parties: Parties = Parties(None)
    recipient: str | None = None
    supervisors: Collection[str] = ()


@dataclass(frozen=True)
class Rule:
    """Who may do one thing: `name` says who in words; `test` decides for a caller and a
    subject. `a | b` allows whom either allows."""

    name: str
    test: Callable[[Principal, Subject], bool]

    def __or__(self, other: Rule) -> Rule:
        return Rule(
            f"{self.name} or {other.name}", lambda p, s: self.test(p, s) or other.test(p, s)
        )


ADMINS = Rule("an admin", lambda principal, subject: principal.is_admin)
READERS = Rule("an auditor or admin", lambda principal, subject: reads_everything(principal))
RECIPIENT = Rule(
    "the recipient", lambda principal, subject: subject.recipient == recipient_key(principal)
)
OWN_RECIPIENT = Rule(
    "a coach, client or supervisor for themselves",
    lambda principal, subject: (
        principal.role in RECIPIENT_ROLES and subject.recipient == recipient_key(principal)
    ),
)
SUPERVISOR_OF_ANY = Rule(
    "a supervisor of one of them",
    lambda principal, subject: (
        principal.role == "supervisor" and principal.sub in subject.supervisors
    ),
)


def party(*roles: Role) -> Rule:
    """The subject's party in one of `roles` (its coach, its client, ...)."""
    return Rule(
        f"its {' or '.join(roles)}",
        lambda principal, subject: any(subject.parties.includes(principal, r) for r in roles),
    )


def allowed(principal: Principal, rule: Rule, subject: Subject = Subject()) -> bool:
    """Whether the caller may do what `rule` guards, to `subject`."""
    return rule.test(principal, subject)


def require(principal: Principal, rule: Rule, subject: Subject, refusal: str) -> None:
    """PermissionDenied (403, `refusal`) unless the caller may."""
    if not allowed(principal, rule, subject):
        raise PermissionDenied(refusal)
