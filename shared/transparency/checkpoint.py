"""C2SP tlog-checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head.

The body is `<origin>\\n<tree size, decimal>\\n<root hash, standard base64>\\n`, then optional
non-empty extension lines; a checkpoint is a signed note of that body, and Rapport's are
signed by an Ed25519 key whose name is the origin (`rapport/<service>`). The key comes from
`RAPPORT_SIGNING_KEY`, a base64url 32-byte seed (contract section 10).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.transparency.encoding import (
    MAX_SIZE,
    b64decode,
    b64encode,
    b64url_decode,
    decode_decimal,
)
from shared.transparency.merkle import HASH_SIZE
from shared.transparency.note import (
    Ed25519Signer,
    Ed25519Verifier,
    InvalidKey,
    NoteError,
    Signer,
    Verifiers,
    is_valid_key_name,
    open_note,
    sign_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NotSignedByLog",
    "checkpoint_origin",
    "generate_seed",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
    "signer_from_seed",
    "verifier_key",
]


class CheckpointError(ValueError):
    """Note text that is not a checkpoint body."""


class NotSignedByLog(NoteError):
    """A note that verified, but not under a key named after its origin."""


def _check_line(line: str, what: str) -> None:
    if not line or any(c < " " for c in line):
        raise CheckpointError(f"the {what} is a non-empty line without control characters")


@dataclass(frozen=True)
class Checkpoint:
    """A log's origin, tree size and root hash, with any extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"a tree size is within 0 and 2^64 - 1, not {self.size}")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"a root hash has {HASH_SIZE} bytes, not {len(self.root)}")
        for line in self.extensions:
            _check_line(line, "extension line")

    def text(self) -> str:
        """The note text: origin, size, root and extension lines, each ending in a newline."""
        lines = (self.origin, str(self.size), b64encode(self.root), *self.extensions)
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a note's text states, or CheckpointError."""
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint's text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a size and a root hash line")
    origin, size, root, *extensions = lines
    try:
        tree_size = decode_decimal(size)
    except ValueError as error:
        raise CheckpointError(f"tree size: {error}") from error
    try:
        root_hash = b64decode(root)
    except ValueError as error:
        raise CheckpointError(f"root hash: {error}") from error
    return Checkpoint(origin, tree_size, root_hash, tuple(extensions))


def sign_checkpoint(signer: Signer, checkpoint: Checkpoint) -> str:
    """The checkpoint as a note signed by `signer`, whose name must be the origin."""
    if signer.name != checkpoint.origin:
        raise InvalidKey(f"key {signer.name} is not named after origin {checkpoint.origin}")
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(note: str | bytes, verifiers: Verifiers) -> Checkpoint:
    """The checkpoint a signed note states, once a known key named after its origin signed it.

    Raises a NoteError (malformed, bad or missing signature, NotSignedByLog) or CheckpointError.
    """
    opened = open_note(note, verifiers)
    checkpoint = parse_checkpoint(opened.text)
    if not any(signature.name == checkpoint.origin for signature in opened.verified):
        names = ", ".join(sorted({signature.name for signature in opened.verified}))
        raise NotSignedByLog(f"the checkpoint of {checkpoint.origin} is signed only by {names}")
    return checkpoint


def checkpoint_origin(service: str, prefix: str = "rapport") -> str:
    """`<prefix>/<service>`: a service's origin, and its key's name."""
    origin = f"{prefix}/{service}"
    if not prefix or not service or not is_valid_key_name(origin):
        raise InvalidKey(f"{origin!r} is not an origin (no spaces, plus signs or controls)")
    return origin


def generate_seed() -> str:
    """A new Ed25519 seed for `RAPPORT_SIGNING_KEY`: 32 random bytes, base64url."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def signer_from_seed(seed: str, name: str) -> Ed25519Signer:
    """The signer of a base64url 32-byte seed (`RAPPORT_SIGNING_KEY`), named `name`."""
    try:
        raw = b64url_decode(seed)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidKey("the signing key is a base64url 32-byte Ed25519 seed")
    return Ed25519Signer.from_seed(name, raw)


def verifier_key(name: str, public_key: bytes | Ed25519PublicKey) -> str:
    """`<name>+<key id>+<base64(0x01 || public key)>`."""
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    return Ed25519Verifier(name, raw).vkey
