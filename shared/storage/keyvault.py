"""The key vault on PostgreSQL: per-client data keys, wrapped by the master key, created on
first use and destroyed on erasure (`keyvault.client_keys`, shared by every service of a
database). Sealing and opening are `shared.security.crypto`'s; this is where the keys live."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.security.crypto import (
    NONCE_BYTES,
    KeyErased,
    Protect,
    Record,
    Revealed,
    protector,
    reveal_tree,
)

__all__ = ["KEY_CACHE_SECONDS", "KeyVault"]

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
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._master.encrypt(nonce, value.encode(), purpose.encode())
        return "sealed:v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_secret(self, stored: str, purpose: str) -> str:
        """The plaintext of `seal_secret`'s result for the same purpose."""
        raw = base64.urlsafe_b64decode(stored.removeprefix("sealed:v1:").encode())
        return self._master.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()).decode()

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
            nonce = os.urandom(NONCE_BYTES)
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
        return self._master.decrypt(
            wrapped_key[:NONCE_BYTES], wrapped_key[NONCE_BYTES:], client_id.encode()
        )
