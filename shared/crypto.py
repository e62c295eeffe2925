"""Per-client encryption of personal data (contract section 5).

Each client has an AES-256-GCM data key, stored wrapped by the master key. Personal values
inside events become tokens `enc:v1:<client_id>:<base64url(nonce|ciphertext)>`. Destroying a
client's key (erasure) leaves every event and hash intact while the values become unreadable.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KeyErased",
    "KeyVault",
    "decode_master_key",
    "generate_master_key",
    "is_token",
    "token_owner",
]

TOKEN_PREFIX = "enc:v1:"
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


class KeyErased(LookupError):
    """The client's key was destroyed; their personal data can no longer be read."""


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def decode_master_key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text.encode())
    if len(key) != 32:
        raise ValueError("the master key must be 32 bytes, base64url-encoded")
    return key


def is_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def token_owner(token: str) -> str:
    return token[len(TOKEN_PREFIX) :].rsplit(":", 1)[0]


def _seal(key: bytes, client_id: str, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), client_id.encode())
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{TOKEN_PREFIX}{client_id}:{body}"


def _open(key: bytes, token: str) -> str:
    client_id, body = token[len(TOKEN_PREFIX) :].rsplit(":", 1)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return AESGCM(key).decrypt(raw[:12], raw[12:], client_id.encode()).decode()


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
        nonce = os.urandom(12)
        sealed = self._master.encrypt(nonce, value.encode(), purpose.encode())
        return "sealed:v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_secret(self, stored: str, purpose: str) -> str:
        """The plaintext of `seal_secret`'s result for the same purpose."""
        raw = base64.urlsafe_b64decode(stored.removeprefix("sealed:v1:").encode())
        return self._master.decrypt(raw[:12], raw[12:], purpose.encode()).decode()

    @staticmethod
    async def install(conn: asyncpg.Connection) -> None:
        """Create the key table once per database (under a lock)."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('keyvault'))")
        await conn.execute(KEYVAULT_DDL)

    async def encryptor(self, conn: asyncpg.Connection, client_id: str) -> Callable[[str], str]:
        """A function sealing plaintext with the client's key, creating the key if new.

        For an erased client, new plaintext is dropped: it becomes a token no key opens. The
        unwrapped key is kept for a short while (`key_ttl`) for the next writes; erasing here
        drops it at once, and data sealed meanwhile by another instance with a key erased
        there is as unreadable as the rest.
        """
        cached = self._sealing_keys.get(client_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now and client_id not in self._erased:
            key = cached[0]
        else:
            try:
                key = await self._key(conn, client_id, create=True)
            except KeyErased:
                self._sealing_keys.pop(client_id, None)
                return lambda value: value if is_token(value) else f"{TOKEN_PREFIX}{client_id}:-"
            if len(self._sealing_keys) >= MAX_CACHED_KEYS:
                self._sealing_keys.clear()
            self._sealing_keys[client_id] = (key, now + self._key_ttl)
        return lambda value: value if is_token(value) else _seal(key, client_id, value)

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

    async def reveal(self, tree: Any, *, authorised: bool = True) -> tuple[Any, bool]:
        """Decrypt every token in a JSON tree; erased (or unauthorised) values become None.

        Returns the new tree and whether any value belonged to an erased client.
        """
        keys: dict[str, bytes | None] = {}
        owners: set[str] = set()
        _collect_owners(tree, owners)
        if authorised:
            for owner in owners:
                keys[owner] = await self._readable_key(owner)
        erased = False
        for owner in owners:
            erased = await self.is_erased(owner) or erased
        return _replace_tokens(tree, keys), erased

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
            nonce = os.urandom(12)
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
        return self._master.decrypt(wrapped_key[:12], wrapped_key[12:], client_id.encode())


def _collect_owners(tree: Any, owners: set[str]) -> None:
    if is_token(tree):
        owners.add(token_owner(tree))
    elif isinstance(tree, dict):
        for value in tree.values():
            _collect_owners(value, owners)
    elif isinstance(tree, list):
        for value in tree:
            _collect_owners(value, owners)


def _replace_tokens(tree: Any, keys: dict[str, bytes | None]) -> Any:
    if is_token(tree):
        key = keys.get(token_owner(tree))
        return None if key is None else _open(key, tree)
    if isinstance(tree, dict):
        return {name: _replace_tokens(value, keys) for name, value in tree.items()}
    if isinstance(tree, list):
        return [_replace_tokens(value, keys) for value in tree]
    return tree
