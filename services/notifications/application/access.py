"""Who may do what with notifications (contract section 3), in the kernel's one policy."""

from __future__ import annotations

from shared.usecases.access import ADMINS, OWN_RECIPIENT, READERS, RECIPIENT, Rule

__all__ = ["ACCESS", "LISTS", "REGISTERS"]

LISTS = READERS | RECIPIENT
"""A recipient's notifications: that recipient, auditors and admins (also for `*`)."""
REGISTERS = ADMINS | OWN_RECIPIENT
"""Webhooks: admins for anyone (and `*`); a coach, client or supervisor only for themselves."""

ACCESS: dict[str, Rule] = {"list notifications": LISTS, "register a webhook": REGISTERS}
