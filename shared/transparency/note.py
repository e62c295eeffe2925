"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.

A note is UTF-8 text with no ASCII control character but newline, ending in a newline; then a
blank line; then one line per signature, `— <key name> <base64(key id || signature)>`, with
an em dash (U+2014). A key id is the first four bytes, big-endian, of SHA-256(key name || 0x0A
|| signature type || public key); Ed25519 is type 0x01 and signs the text's bytes.

Keys travel as text: a verifier key is `<name>+<key id, 8 hex digits>+<base64(type || public
key)>`, and a signer key, as Go's golang.org/x/mod/sumdb/note writes it,
`PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>`.

Opening a note ignores signatures from unknown keys (a key is its name and id together),
verifies every one from a known key, rejects the note if any of those fails, and rejects it
if none is left verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.transparency.encoding import b64decode, b64encode

__all__ = [
    "ED25519",
    "MAX_SIGNATURES",
    "Ed25519Key",
    "Ed25519Signer",
    "Ed25519SigningKey",
    "Ed25519Verifier",
    "InvalidKey",
    "InvalidSignature",
    "MalformedNote",
    "Note",
    "NoteError",
    "Signature",
    "Signer",
    "UnverifiedNote",
    "Verifier",
    "VerifierKey",
    "Verifiers",
    "decode_verifier_key",
    "encode_verifier_key",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "private_key_from_seed",
    "sign_note",
]

ED25519 = 0x01
MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's note package takes 100
_SIGNATURE_PREFIX = "\u2014 "
_SEPARATOR = "\n\n"
_SIGNER_PREFIX = "PRIVATE+KEY+"
_Key = TypeVar("_Key", bound="Ed25519Key")


class NoteError(ValueError):
    """A note or key that cannot be trusted, and why."""


class MalformedNote(NoteError):
    """Text that is not a signed note."""


class InvalidKey(NoteError):
    """A verifier or signer key that is not well formed, or keys that cannot be told apart."""


class InvalidSignature(NoteError):
    """A signature from a known key that does not verify: the whole note is refused."""

    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")
        self.name = name
        self.key_id = key_id


class UnverifiedNote(NoteError):
    """A note that no known key signed; `note` holds what it carried."""

    def __init__(self, note: Note) -> None:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.unverified) or "none"
        super().__init__(f"no signature from a known key (the note is signed by: {names})")
        self.note = note


def is_valid_key_name(name: str) -> bool:
    """Non-empty, without Unicode spaces, plus signs or control characters."""
    return bool(name) and not any(c.isspace() or c == "+" or c < " " for c in name)


def _utf8(text: str, error: type[NoteError]) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as failure:
        raise error("not valid UTF-8") from failure


def key_id(name: str, key: bytes) -> int:
    """SHA-256(name || 0x0A || key)[:4] as a big-endian integer; `key` starts with its type."""
    digest = hashlib.sha256(_utf8(name, InvalidKey) + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and id and the signature's bytes."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise MalformedNote(f"{self.name!r} is not a key name")
        if not 0 <= self.key_id < 2**32:
            raise MalformedNote(f"key id {self.key_id} is not 32 bits")

    def line(self) -> str:
        """`— <name> <base64(key id || signature)>` and a newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {b64encode(raw)}\n"


@dataclass(frozen=True)
class Note:
    """A note's text and its signatures: those a known key verified, and the others."""

    text: str
    verified: tuple[Signature, ...] = ()
    unverified: tuple[Signature, ...] = ()


class Signer(Protocol):
    """A key that signs notes."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes:
        """The signature of a note's text (its bytes)."""
        ...


class Verifier(Protocol):
    """A key that checks signatures on notes."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    @property
    def vkey(self) -> str:
        """The key as verifier key text."""
        ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` (key id removed) signs the note text `message`."""
        ...


@dataclass(frozen=True)
class VerifierKey:
    """A verifier key's parts: name, id, signature type and public key material."""

    name: str
    key_id: int
    type: int
    public_key: bytes


def encode_verifier_key(name: str, type: int, public_key: bytes) -> str:
    """`<name>+<key id>+<base64(type || public key)>`."""
    if not is_valid_key_name(name):
        raise InvalidKey(f"{name!r} is not a key name")
    key = bytes([type]) + public_key
    return f"{name}+{key_id(name, key):08x}+{b64encode(key)}"


def _key_parts(text: str) -> tuple[str, int, bytes]:
    """`<name>+<key id, 8 lowercase hex digits>+<base64>`, split and decoded."""
    name, _, rest = text.partition("+")
    id_text, _, key_text = rest.partition("+")
    if not is_valid_key_name(name):
        raise InvalidKey(f"{name!r} is not a key name")
    if len(id_text) != 8 or not set(id_text) <= set("0123456789abcdef"):
        raise InvalidKey(f"{id_text!r} is not a key id of 8 lowercase hex digits")
    try:
        key = b64decode(key_text)
    except ValueError as error:
        raise InvalidKey(f"the key of {name} is not base64") from error
    return name, int(id_text, 16), key


def decode_verifier_key(vkey: str) -> VerifierKey:
    """The parts of a verifier key, its key id checked against its name and key."""
    name, identifier, key = _key_parts(vkey)
    if len(key) < 2:
        raise InvalidKey(f"the key of {name} is empty")
    if key_id(name, key) != identifier:
        raise InvalidKey(f"key id {identifier:08x} does not match the name and key of {name}")
    return VerifierKey(name, identifier, key[0], key[1:])


class Ed25519Key:
    """An Ed25519 public key under a name, for one signature type (`TYPE`)."""

    TYPE: ClassVar[int] = ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise InvalidKey(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
        self._vkey = encode_verifier_key(name, self.TYPE, public_key)
        self._name = name
        self._key_id = key_id(name, bytes([self.TYPE]) + public_key)
        self._public = public_key
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def vkey(self) -> str:
        return self._vkey

    def verify_raw(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of exactly `message`."""
        try:
            self._key.verify(signature, message)
        except _BadSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self) and isinstance(other, Ed25519Key) and other.vkey == self.vkey
        )

    def __hash__(self) -> int:
        return hash(self._vkey)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._vkey!r})"


class Ed25519Verifier(Ed25519Key):
    """A log's Ed25519 key (signature type 0x01): it signs the note text itself."""

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self.verify_raw(message, signature)


def parse_verifier_key(vkey: str) -> Ed25519Verifier:
    """The Ed25519 verifier a verifier key names, or InvalidKey."""
    parts = decode_verifier_key(vkey)
    if parts.type != ED25519:
        raise InvalidKey(f"signature type 0x{parts.type:02x} is not Ed25519 (0x01)")
    return Ed25519Verifier(parts.name, parts.public_key)


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key of a 32-byte RFC 8032 seed, or InvalidKey."""
    if len(seed) != 32:
        raise InvalidKey(f"an Ed25519 seed has 32 bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


class Ed25519SigningKey(Generic[_Key]):
    """An Ed25519 private key and the public key that checks what it signs."""

    def __init__(self, private_key: Ed25519PrivateKey, verifier: _Key) -> None:
        self._private = private_key
        self._verifier = verifier

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    @property
    def public_key(self) -> bytes:
        return self._verifier.public_key

    def verifier(self) -> _Key:
        return self._verifier

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._verifier.vkey!r})"


class Ed25519Signer(Ed25519SigningKey[Ed25519Verifier]):
    """A log's Ed25519 private key under a name (signature type 0x01)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        public_key = private_key.public_key().public_bytes_raw()
        super().__init__(private_key, Ed25519Verifier(name, public_key))

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Ed25519Signer:
        """The signer of a 32-byte RFC 8032 seed."""
        return cls(name, private_key_from_seed(seed))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def signer_key(self) -> str:
        """`PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>`: it holds the private key."""
        seed = bytes([ED25519]) + self._private.private_bytes_raw()
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_id:08x}+{b64encode(seed)}"


def parse_signer_key(skey: str) -> Ed25519Signer:
    """The signer a `PRIVATE+KEY+...` key names, or InvalidKey."""
    if not skey.startswith(_SIGNER_PREFIX):
        raise InvalidKey("a signer key starts with PRIVATE+KEY+")
    name, identifier, key = _key_parts(skey.removeprefix(_SIGNER_PREFIX))
    if len(key) != 33 or key[0] != ED25519:
        raise InvalidKey("a signer key holds 0x01 and a 32-byte Ed25519 seed")
    signer = Ed25519Signer.from_seed(name, key[1:])
    if signer.key_id != identifier:
        raise InvalidKey(f"key id {identifier:08x} does not match the name and key of {name}")
    return signer


class Verifiers:
    """The keys a reader trusts, found by name and key id together."""

    def __init__(self, verifiers: Iterable[Verifier] = ()) -> None:
        self._keys: dict[tuple[str, int], Verifier] = {}
        for verifier in verifiers:
            known = self._keys.setdefault((verifier.name, verifier.key_id), verifier)
            if known.vkey != verifier.vkey:
                raise InvalidKey(
                    f"two different keys are named {verifier.name}+{verifier.key_id:08x}"
                )

    def find(self, name: str, key_id: int) -> Verifier | None:
        return self._keys.get((name, key_id))

    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._keys)

    def __iter__(self) -> Iterator[Verifier]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)


def _check_text(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise MalformedNote("a note holds no control character but newline")


def _signature_line(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise MalformedNote(f"{line[:40]!r} is not a signature line")
    name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
    try:
        raw = b64decode(encoded)
    except ValueError as error:
        raise MalformedNote(f"the signature of {name!r} is not base64") from error
    if len(raw) < 5:
        raise MalformedNote(f"the signature of {name!r} is too short")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse_note(message: str | bytes) -> Note:
    """A note's text and signatures, none verified (all in `unverified`), or MalformedNote."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedNote("not valid UTF-8") from error
    _utf8(message, MalformedNote)
    _check_text(message)
    split = message.rfind(_SEPARATOR)
    if split < 0:
        raise MalformedNote("no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNote("a note ends with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signatures")
    signatures = dict.fromkeys(_signature_line(line) for line in lines)
    return Note(text, (), tuple(signatures))


def open_note(message: str | bytes, verifiers: Verifiers) -> Note:
    """The note, once every signature from a known key verified and at least one did."""
    note = parse_note(message)
    body = note.text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in note.unverified:
        verifier = verifiers.find(signature.name, signature.key_id)
        if verifier is None:
            unverified.append(signature)
        elif verifier.verify(body, signature.signature):
            verified.append(signature)
        else:
            raise InvalidSignature(signature.name, signature.key_id)
    opened = Note(note.text, tuple(verified), tuple(unverified))
    if not verified:
        raise UnverifiedNote(opened)
    return opened


def sign_note(text: str, signers: Sequence[Signer], keep: Sequence[Signature] = ()) -> str:
    """`text` signed by `signers`, after the signatures in `keep` from other keys."""
    body = _utf8(text, MalformedNote)
    _check_text(text)
    if not text.endswith("\n"):
        raise MalformedNote("a note's text ends with a newline")
    for signer in signers:
        if not is_valid_key_name(signer.name):
            raise InvalidKey(f"{signer.name!r} is not a key name")
    signing = {(signer.name, signer.key_id) for signer in signers}
    kept = [s for s in dict.fromkeys(keep) if (s.name, s.key_id) not in signing]
    fresh = [Signature(s.name, s.key_id, s.sign(body)) for s in signers]
    if not kept + fresh:
        raise MalformedNote("a note needs a signature")
    if len(kept + fresh) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(signature.line() for signature in kept + fresh)
