"""C2SP tlog-cosignature v1 with Ed25519 (signature type 0x04): a witness's statement that, at
a time, a checkpoint is the largest consistent one it has seen of its log.

The witness signs `cosignature/v1\\ntime <POSIX seconds>\\n` followed by the checkpoint's note
text; its signature is the timestamp (8 bytes, big-endian) then the Ed25519 signature, under the
key id SHA-256(name || 0x0A || 0x04 || public key)[:4].
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.clock import Clock
from shared.transparency.note import (
    InvalidKey,
    MalformedNote,
    Signature,
    decode_verifier_key,
    encode_verifier_key,
    key_id,
)

__all__ = [
    "COSIGNATURE_V1",
    "CosignatureVerifier",
    "Ed25519Cosigner",
    "cosignature_time",
    "cosigned_message",
    "parse_cosigner_key",
]

COSIGNATURE_V1 = 0x04
_MAX_TIMESTAMP = 2**63 - 1
_LENGTH = 8 + 64


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What a v1 cosignature signs: its header and time lines, then the checkpoint text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosignature_time(signature: Signature) -> int:
    """The POSIX time a v1 cosignature states, or MalformedNote."""
    if len(signature.signature) != _LENGTH:
        raise MalformedNote(f"a cosignature has {_LENGTH} bytes, not {len(signature.signature)}")
    return int.from_bytes(signature.signature[:8], "big")


class CosignatureVerifier:
    """A witness's Ed25519 cosigning key under its name."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise InvalidKey(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
        self._vkey = encode_verifier_key(name, COSIGNATURE_V1, public_key)
        self._name = name
        self._key_id = key_id(name, bytes([COSIGNATURE_V1]) + public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def vkey(self) -> str:
        return self._vkey

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _LENGTH:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        try:
            self._key.verify(signature[8:], cosigned_message(message, timestamp))
        except _BadSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self._vkey!r})"


def parse_cosigner_key(vkey: str) -> CosignatureVerifier:
    """The cosignature verifier a type 0x04 verifier key names, or InvalidKey."""
    parts = decode_verifier_key(vkey)
    if parts.type != COSIGNATURE_V1:
        raise InvalidKey(f"signature type 0x{parts.type:02x} is not a v1 cosignature (0x04)")
    return CosignatureVerifier(parts.name, parts.public_key)


class Ed25519Cosigner:
    """A witness's Ed25519 key: signs checkpoint texts as v1 cosignatures at the clock's time."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey, clock: Clock) -> None:
        self._private = private_key
        self._clock = clock
        self._verifier = CosignatureVerifier(name, private_key.public_key().public_bytes_raw())

    @classmethod
    def from_seed(cls, name: str, seed: bytes, clock: Clock) -> Ed25519Cosigner:
        if len(seed) != 32:
            raise InvalidKey(f"an Ed25519 seed has 32 bytes, not {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed), clock)

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    def verifier(self) -> CosignatureVerifier:
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        timestamp = int(self._clock.now().timestamp())
        if not 0 < timestamp <= _MAX_TIMESTAMP:
            raise ValueError(f"a cosignature's time is after 1970 and fits 63 bits: {timestamp}")
        signed = self._private.sign(cosigned_message(message, timestamp))
        return timestamp.to_bytes(8, "big") + signed
