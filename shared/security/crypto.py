"""Per-client encryption of personal data (contract section 5).

Each client has an AES-256-GCM data key, stored wrapped by the master key. A personal value
inside an event becomes a token bound to the record that holds it: `enc:v2:<field>:<base64url(
nonce|ciphertext)>`, sealed with the key of the record's client and, as associated data, that
client's id, the record's stream and the field. A value is only ever opened with the key and
binding of the record it is read from, never with anything the token itself names, so a token
copied into another record opens nowhere. Text that a request carries is sealed as that
request's text even when it looks like a token: only a token that already opens under this very
record is kept as it is (the system copying a record's own values, as `ClientCommitted` does).

Tokens written before records were bound (`enc:v1:<client_id>:...`, associated data the client
id alone) stay readable where they decrypt under their record's own client. Destroying a
client's key (erasure) leaves every event and hash intact while the values become unreadable.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prometheus_client import Counter

__all__ = [
    "UNREADABLE",
    "KeyErased",
    "KeyVault",
    "Protect",
    "Record",
    "Revealed",
    "Unreadable",
    "decode_master_key",
    "generate_master_key",
    "is_token",
    "open_token",
    "protector",
    "reveal_tree",
    "seal_text",
]

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "enc:"
V1_PREFIX = "enc:v1:"
V2_PREFIX = "enc:v2:"
DROPPED = "-"  # the body of a value written after its client's erasure: no key opens it
KEYVAULT_DDL = """
CREATE SCHEMA IF NOT EXISTS keyvault;
CREATE TABLE IF NOT EXISTS keyvault.client_keys (
    client_id   text PRIMARY KEY,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);
"""

KEY_CACHE_SECONDS = 30.0  # how long an unwrapped key is kept for sealing new data
MAX_CACHED_KEYS = 50_000
_NONCE = 12

UNREADABLE = Counter(
    "rapport_personal_values_unreadable_total",
    "Personal values that did not decrypt under their record's key (forged or corrupted);"
    " they read as null",
)

Protect = Callable[[str, str], str]
"""Seals one personal value: `protect(field, value) -> token`."""


class KeyErased(LookupError):
    """The client's key was destroyed; their personal data can no longer be read."""


class Unreadable(ValueError):
    """A token that does not open under the record it is read from."""


@dataclass(frozen=True)
class Record:
    """Where personal values live: the client whose data they are and the stream holding them."""

    client_id: str
    stream_id: str


class Revealed(NamedTuple):
    """A tree with its personal values opened: `erased` when the record's key is gone (its values
    read as None), `unreadable` how many values did not decrypt (they read as None too)."""

    tree: Any
    erased: bool
    unreadable: int


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def decode_master_key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text.encode())
    if len(key) != 32:
        raise ValueError("the master key must be 32 bytes, base64url-encoded")
    return key


def is_token(value: object) -> bool:
    """Whether a value has the shape of a sealed personal value (it may still be forged)."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _binding(record: Record, field: str) -> bytes:
    return b"\x00".join(
        (b"rapport:v2", _utf8(record.client_id), _utf8(record.stream_id), _utf8(field))
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(body: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as error:
        raise Unreadable("not base64url") from error


def seal_text(key: bytes, record: Record, field: str, plaintext: str) -> str:
    """`plaintext` sealed for one field of one record."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, _utf8(plaintext), _binding(record, field))
    return f"{V2_PREFIX}{field}:{_b64(nonce + sealed)}"


def dropped(field: str) -> str:
    """What a field of an erased client's record holds instead of new plaintext."""
    return f"{V2_PREFIX}{field}:{DROPPED}"


def _decrypt(key: bytes, body: str, associated: bytes) -> str:
    raw = _unb64(body)
    if len(raw) < _NONCE + 16:
        raise Unreadable("too short")
    try:
        return (
            AESGCM(key)
            .decrypt(raw[:_NONCE], raw[_NONCE:], associated)
            .decode("utf-8", "surrogatepass")
        )
    except (InvalidTag, UnicodeDecodeError) as error:
        raise Unreadable("does not decrypt under this record") from error


def open_token(key: bytes, record: Record, token: str) -> str:
    """The plaintext of a token read from `record`, opened with that record's client key; raises
    Unreadable for anything else (another record's token, a forgery, a dropped value)."""
    if token.startswith(V2_PREFIX):
        field, separator, body = token[len(V2_PREFIX) :].partition(":")
        if not separator or body == DROPPED:
            raise Unreadable("no value")
        return _decrypt(key, body, _binding(record, field))
    if token.startswith(V1_PREFIX):
        owner, separator, body = token[len(V1_PREFIX) :].rpartition(":")
        if not separator or owner != record.client_id:
            raise Unreadable("another client's token")
        return _decrypt(key, body, _utf8(owner))
    raise Unreadable("not a token")


def _opens(key: bytes, record: Record, value: str) -> bool:
    try:
        open_token(key, record, value)
    except Unreadable:
        return False
    return True


def protector(key: bytes | None, record: Record) -> Protect:
    """Seals a record's personal values with its client's key (`None`: the client was erased,
    and new values are dropped). A value is kept as it is only when it is already a token that
    opens under this record; anything else, token-shaped or not, is sealed as text."""

    def protect(field: str, value: str) -> str:
        if key is None:
            return dropped(field)
        if is_token(value) and _opens(key, record, value):
            return value
        return seal_text(key, record, field, value)

    return protect


def reveal_tree(tree: Any, key: bytes | None, record: Record, *, erased: bool = False) -> Revealed:
    """Every token in a JSON tree opened as `record`'s. With `erased` (the client's key was
    destroyed) every value reads None; a token that does not open reads None and is counted
    (with no key at all, every one), never raised."""
    unreadable = 0

    def opened(value: Any) -> Any:
        nonlocal unreadable
        if is_token(value):
            if erased:
                return None
            try:
                if key is None:
                    raise Unreadable("no key for this client")
                return open_token(key, record, value)
            except Unreadable:
                if not value.endswith(f":{DROPPED}"):
                    unreadable += 1
                return None
        if isinstance(value, dict):
            return {name: opened(item) for name, item in value.items()}
        if isinstance(value, list):
            return [opened(item) for item in value]
        return value

    revealed = opened(tree)
    if unreadable:
        UNREADABLE.inc(unreadable)
        log.warning(
            "personal values unreadable",
            client_id=record.client_id,
            stream_id=record.stream_id,
            count=unreadable,
        )
    return Revealed(revealed, erased, unreadable)


class KeyVault:
    """Creates, unwraps and destroys per-client data keys held in PostgreSQL."""

    def __init__(
        self, pool: asyncpg.Pool, master_key: bytes, *, key_ttl: float = KEY_CACHE_SECONDS
    ) -> None:
        self._pool = pool
        self._master = AESGCM(master_key)
        self._erased: set[str] = set()
        self._key_ttl = key_ttl
        self._sealing_keys: dict[str, tuple[bytes, float]] = {}

    def seal_secret(self, value: str, purpose: str) -> str:
        """Encrypt a service secret (a webhook's signing secret, say) with the master key,
        bound to `purpose`, for storage at rest."""
        nonce = os.urandom(_NONCE)
        sealed = self._master.encrypt(nonce, value.encode(), purpose.encode())
        return "sealed:v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_secret(self, stored: str, purpose: str) -> str:
        """The plaintext of `seal_secret`'s result for the same purpose."""
        raw = base64.urlsafe_b64decode(stored.removeprefix("sealed:v1:").encode())
        return self._master.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode()).decode()

    @staticmethod
    async def install(conn: asyncpg.Connection) -> None:
        """Create the key table once per database (under a lock)."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('keyvault'))")
        await conn.execute(KEYVAULT_DDL)

    async def sealer(self, conn: asyncpg.Connection, record: Record) -> Protect:
        """Seals personal values into `record`, creating its client's key if new.

        For an erased client, new plaintext is dropped. The unwrapped key is kept for a short
        while (`key_ttl`) for the next writes; erasing here drops it at once, and data sealed
        meanwhile by another instance with a key erased there is as unreadable as the rest.
        """
        client_id = record.client_id
        cached = self._sealing_keys.get(client_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now and client_id not in self._erased:
            return protector(cached[0], record)
        try:
            key = await self._key(conn, client_id, create=True)
        except KeyErased:
            self._sealing_keys.pop(client_id, None)
            return protector(None, record)
        if len(self._sealing_keys) >= MAX_CACHED_KEYS:
            self._sealing_keys.clear()
        self._sealing_keys[client_id] = (key, now + self._key_ttl)
        return protector(key, record)

    async def erase(self, conn: asyncpg.Connection, client_id: str) -> bool:
        """Destroy the client's key. True if a key was destroyed now."""
        status = await conn.execute(
            "UPDATE keyvault.client_keys SET wrapped_key = NULL, erased_at = now() "
            "WHERE client_id = $1 AND wrapped_key IS NOT NULL",
            client_id,
        )
        if status.endswith(" 0"):
            await conn.execute(
                "INSERT INTO keyvault.client_keys (client_id, wrapped_key, erased_at) "
                "VALUES ($1, NULL, now()) ON CONFLICT (client_id) DO NOTHING",
                client_id,
            )
        self._erased.add(client_id)
        self._sealing_keys.pop(client_id, None)
        return not status.endswith(" 0")

    async def is_erased(self, client_id: str) -> bool:
        """Whether the client's key was destroyed."""
        if client_id in self._erased:
            return True
        erased_at = await self._pool.fetchval(
            "SELECT erased_at FROM keyvault.client_keys WHERE client_id = $1", client_id
        )
        if erased_at is not None:
            self._erased.add(client_id)
        return erased_at is not None

    async def reveal(self, tree: Any, record: Record) -> Revealed:
        """Every token in a JSON tree read from `record`, opened with its client's key."""
        key = await self._readable_key(record.client_id)
        erased = key is None and await self.is_erased(record.client_id)
        return reveal_tree(tree, key, record, erased=erased)

    async def _readable_key(self, client_id: str) -> bytes | None:
        if client_id in self._erased:
            return None
        async with self._pool.acquire() as conn:
            try:
                return await self._key(conn, client_id, create=False)
            except KeyErased:
                return None

    async def _key(self, conn: asyncpg.Connection, client_id: str, *, create: bool) -> bytes:
        row = await conn.fetchrow(
            "SELECT wrapped_key, erased_at FROM keyvault.client_keys WHERE client_id = $1",
            client_id,
        )
        if row is None:
            if not create:
                raise KeyErased(client_id)
            key = AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(_NONCE)
            wrapped = nonce + self._master.encrypt(nonce, key, client_id.encode())
            await conn.execute(
                "INSERT INTO keyvault.client_keys (client_id, wrapped_key) VALUES ($1, $2) "
                "ON CONFLICT (client_id) DO NOTHING",
                client_id,
                wrapped,
            )
            return await self._key(conn, client_id, create=False)
        if row["wrapped_key"] is None:
            self._erased.add(client_id)
            raise KeyErased(client_id)
        wrapped_key: bytes = row["wrapped_key"]
        return self._master.decrypt(wrapped_key[:_NONCE], wrapped_key[_NONCE:], client_id.encode())
