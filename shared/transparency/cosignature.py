"""C2SP tlog-cosignature v1 with Ed25519 (signature type 0x04): a witness's statement that, at
a time, a checkpoint is the largest consistent one it has seen of its log.

The witness signs `cosignature/v1\\ntime <POSIX seconds>\\n` followed by the checkpoint's note
text; its signature is the timestamp (8 bytes, big-endian) then the Ed25519 signature, under the
key id SHA-256(name || 0x0A || 0x04 || public key)[:4].
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.model.clock import Clock
from shared.transparency.note import (
    Ed25519Key,
    Ed25519SigningKey,
    InvalidKey,
    MalformedNote,
    Signature,
    decode_verifier_key,
    private_key_from_seed,
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


class CosignatureVerifier(Ed25519Key):
    """A witness's Ed25519 cosigning key under its name (signature type 0x04)."""

    TYPE = COSIGNATURE_V1

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _LENGTH:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        return self.verify_raw(cosigned_message(message, timestamp), signature[8:])


def parse_cosigner_key(vkey: str) -> CosignatureVerifier:
    """The cosignature verifier a type 0x04 verifier key names, or InvalidKey."""
    parts = decode_verifier_key(vkey)
    if parts.type != COSIGNATURE_V1:
        raise InvalidKey(f"signature type 0x{parts.type:02x} is not a v1 cosignature (0x04)")
    return CosignatureVerifier(parts.name, parts.public_key)


class Ed25519Cosigner(Ed25519SigningKey[CosignatureVerifier]):
    """A witness's Ed25519 key: signs checkpoint texts as v1 cosignatures at the clock's time."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey, clock: Clock) -> None:
        public_key = private_key.public_key().public_bytes_raw()
        super().__init__(private_key, CosignatureVerifier(name, public_key))
        self._clock = clock

    @classmethod
    def from_seed(cls, name: str, seed: bytes, clock: Clock) -> Ed25519Cosigner:
        return cls(name, private_key_from_seed(seed), clock)

    def sign(self, message: bytes) -> bytes:
        timestamp = int(self._clock.now().timestamp())
        if not 0 < timestamp <= _MAX_TIMESTAMP:
            raise ValueError(f"a cosignature's time is after 1970 and fits 63 bits: {timestamp}")
        signed = self._private.sign(cosigned_message(message, timestamp))
        return timestamp.to_bytes(8, "big") + signed
