"""Per-client keys on PostgreSQL: sealing into a record, revealing from it, erasure, and the
tokens written before values were bound to their record."""

from __future__ import annotations

import base64
import os
import uuid

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.security.crypto import KeyVault, Record, decode_master_key, generate_master_key, is_token


def clients() -> tuple[Record, Record]:
    """Two clients' records of their own: the key table is the database's, shared by every
    test (and every test has a master key of its own)."""
    run = uuid.uuid4().hex[:8]
    return Record(f"client-ada-{run}", "engagement-ada"), Record(f"client-bob-{run}", "e-bob")


async def test_values_are_sealed_per_record_and_revealed_until_the_key_is_erased(
    scratch_pool: asyncpg.Pool,
) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    ada, bob = clients()
    async with scratch_pool.acquire() as conn:
        seal_ada = await vault.sealer(conn, ada)
        seal_bob = await vault.sealer(conn, bob)
    adas, bobs = seal_ada("notes", "Ada's secret"), seal_bob("notes", "Bob's secret")
    assert is_token(adas) and "secret" not in adas and seal_ada("notes", adas) == adas
    assert seal_ada("notes", "Ada's secret") != adas  # a fresh nonce every time
    tree = {"notes": adas, "nested": [{"text": adas}], "score": 3}
    revealed = await vault.reveal(tree, ada)
    opened = "Ada's secret"
    assert revealed.tree == {"notes": opened, "nested": [{"text": opened}], "score": 3}
    assert (revealed.erased, revealed.unreadable) == (False, 0)
    assert (await vault.reveal({"text": bobs}, bob)).tree == {"text": "Bob's secret"}

    async with scratch_pool.acquire() as conn:
        assert await vault.erase(conn, ada.client_id) is True
        assert await vault.erase(conn, ada.client_id) is False
    revealed = await vault.reveal(tree, ada)
    assert revealed.tree == {"notes": None, "nested": [{"text": None}], "score": 3}
    assert revealed.erased is True
    assert (await vault.reveal({"text": bobs}, bob)).erased is False

    async with scratch_pool.acquire() as conn:
        after = await vault.sealer(conn, ada)
    dropped = after("notes", "written after erasure")
    assert is_token(dropped) and "erasure" not in dropped
    assert (await vault.reveal({"late": dropped}, ada)).tree == {"late": None}


async def test_another_clients_token_opens_nowhere_but_in_its_own_record(
    scratch_pool: asyncpg.Pool,
) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    ada, bob = clients()
    async with scratch_pool.acquire() as conn:
        adas_name = (await vault.sealer(conn, ada))("client.name", "Ada Lovelace")
        copied = (await vault.sealer(conn, bob))("notes", adas_name)
    assert copied != adas_name  # Bob's record holds its own token of the text it was sent
    bobs_view = await vault.reveal({"notes": copied, "pasted": adas_name}, bob)
    assert bobs_view.tree == {"notes": adas_name, "pasted": None}
    assert bobs_view.unreadable == 1
    async with scratch_pool.acquire() as conn:
        await vault.erase(conn, ada.client_id)
    assert (await vault.reveal({"notes": copied}, bob)).erased is False


async def test_tokens_sealed_before_records_were_bound_still_open_in_their_clients_records(
    scratch_pool: asyncpg.Pool,
) -> None:
    """A database written by the earlier vault: `enc:v1:<client>:...`, bound to the client id
    only. Its keys and tokens read on as they are, but only where their own client's record
    holds them."""
    master = decode_master_key(generate_master_key())
    vault = KeyVault(scratch_pool, master)
    ada, bob = clients()
    async with scratch_pool.acquire() as conn:
        await KeyVault.install(conn)
        for client_id in (ada.client_id, bob.client_id):  # keys as the earlier vault wrapped them
            key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
            wrapped = nonce + AESGCM(master).encrypt(nonce, key, client_id.encode())
            await conn.execute(
                "INSERT INTO keyvault.client_keys (client_id, wrapped_key) VALUES ($1, $2)",
                client_id,
                wrapped,
            )
        ada_key = await vault._key(conn, ada.client_id, create=False)

    def legacy(client_id: str, key: bytes, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), client_id.encode())
        return f"enc:v1:{client_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    old = legacy(ada.client_id, ada_key, "written by the old vault")
    assert (await vault.reveal({"notes": old}, ada)).tree == {"notes": "written by the old vault"}
    in_bobs_record = await vault.reveal({"notes": old}, bob)
    assert in_bobs_record.tree == {"notes": None} and in_bobs_record.unreadable == 1
    async with scratch_pool.acquire() as conn:
        assert (await vault.sealer(conn, ada))("goals.title", old) == old  # a copy stays as it is
        resealed = (await vault.sealer(conn, bob))("notes", old)
    assert resealed != old
    assert (await vault.reveal({"notes": resealed}, bob)).tree == {"notes": old}
