"""The strict text encodings C2SP's formats share: standard base64 and decimal sizes."""

from __future__ import annotations

import base64
import binascii

__all__ = [
    "MAX_SIZE",
    "b64decode",
    "b64encode",
    "b64url_decode",
    "decode_decimal",
]

MAX_SIZE = 2**64 - 1
_DIGITS = frozenset("0123456789")
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64encode(raw: bytes) -> str:
    """Standard base64 (RFC 4648 section 4), padded."""
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str) -> bytes:
    """The bytes of canonical standard base64, or ValueError for anything else."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as error:
        raise ValueError("not standard base64") from error
    if b64encode(raw) != text:
        raise ValueError("not canonical base64")
    return raw


def decode_decimal(text: str) -> int:
    """An ASCII decimal with no leading zero (`0` alone excepted) up to 2^64 - 1."""
    if not text or not set(text) <= _DIGITS or (text[0] == "0" and text != "0"):
        raise ValueError(f"{text!r} is not a decimal number without leading zeros")
    value = int(text)
    if value > MAX_SIZE:
        raise ValueError(f"{text} is larger than 2^64 - 1")
    return value


def b64url_decode(text: str) -> bytes:
    """The bytes of canonical base64url (RFC 4648 section 5), padded or not, or ValueError."""
    body = text.rstrip("=")
    if not set(body) <= _URLSAFE:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error
    canonical = base64.urlsafe_b64encode(raw).decode("ascii")
    if text not in (canonical, canonical.rstrip("=")):
        raise ValueError("not canonical base64url")
    return raw
