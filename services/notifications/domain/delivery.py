"""Webhook delivery policy, pure: the body, its signature, and when to try again."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from shared.model.envelope import canonical_json

SIGNATURE_HEADER = "X-Rapport-Signature"
NOTIFICATION_ID_HEADER = "X-Rapport-Notification-Id"
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class Notice:
    """What a webhook receives: ids, kinds and times only (contract section 3)."""

    notification_id: str
    kind: str
    recipient: str
    engagement_id: str
    due_at: str
    created_at: str

    def body(self) -> bytes:
        """The exact bytes POSTed (and signed): canonical JSON of the six fields."""
        return canonical_json(
            {
                "notification_id": self.notification_id,
                "kind": self.kind,
                "recipient": self.recipient,
                "engagement_id": self.engagement_id,
                "due_at": self.due_at,
                "created_at": self.created_at,
            }
        )


def signature(body: bytes, secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(notice: Notice, body: bytes, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        NOTIFICATION_ID_HEADER: notice.notification_id,
        SIGNATURE_HEADER: signature(body, secret),
    }


def retry_delay(
    attempt: int, base_seconds: float, jitter: float, cap: timedelta = MAX_BACKOFF
) -> timedelta:
    """Exponential backoff with jitter after failed attempt number `attempt` (1-based).

    `jitter` in [0, 1) spreads the delay over [0.5, 1.5) times `base * 2^(attempt-1)`,
    so receivers coming back are not hit by every retry at once.
    """
    exponent = min(max(attempt - 1, 0), 32)
    nominal = base_seconds * (2**exponent)
    delay = timedelta(seconds=nominal * (0.5 + min(max(jitter, 0.0), 1.0)))
    return min(delay, cap)
