"""Per-client keys on PostgreSQL: sealing into a record, revealing from it, erasure, and the
tokens written before values were bound to their record."""

from __future__ import annotations

import base64
import os

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.crypto import KeyVault, Record, decode_master_key, generate_master_key, is_token

ADA = Record("client-ada", "engagement-ada")
BOB = Record("client-bob", "engagement-bob")


async def test_values_are_sealed_per_record_and_revealed_until_the_key_is_erased(
    scratch_pool: asyncpg.Pool,
) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    async with scratch_pool.acquire() as conn:
        seal_ada = await vault.sealer(conn, ADA)
        seal_bob = await vault.sealer(conn, BOB)
    ada, bob = seal_ada("notes", "Ada's secret"), seal_bob("notes", "Bob's secret")
    assert is_token(ada) and "secret" not in ada and seal_ada("notes", ada) == ada
    assert seal_ada("notes", "Ada's secret") != ada  # a fresh nonce every time
    tree = {"notes": ada, "nested": [{"text": ada}], "score": 3}
    revealed = await vault.reveal(tree, ADA)
    assert revealed.tree == {
        "notes": "Ada's secret",
        "nested": [{"text": "Ada's secret"}],
        "score": 3,
    }
    assert (revealed.erased, revealed.unreadable) == (False, 0)
    assert (await vault.reveal({"text": bob}, BOB)).tree == {"text": "Bob's secret"}

    async with scratch_pool.acquire() as conn:
        assert await vault.erase(conn, "client-ada") is True
        assert await vault.erase(conn, "client-ada") is False
    revealed = await vault.reveal(tree, ADA)
    assert revealed.tree == {"notes": None, "nested": [{"text": None}], "score": 3}
    assert revealed.erased is True
    assert (await vault.reveal({"text": bob}, BOB)).erased is False

    async with scratch_pool.acquire() as conn:
        after = await vault.sealer(conn, ADA)
    dropped = after("notes", "written after erasure")
    assert is_token(dropped) and "erasure" not in dropped
    assert (await vault.reveal({"late": dropped}, ADA)).tree == {"late": None}


async def test_another_clients_token_opens_nowhere_but_in_its_own_record(
    scratch_pool: asyncpg.Pool,
) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    async with scratch_pool.acquire() as conn:
        adas_name = (await vault.sealer(conn, ADA))("client.name", "Ada Lovelace")
        copied = (await vault.sealer(conn, BOB))("notes", adas_name)
    assert copied != adas_name  # Bob's record holds its own token of the text it was sent
    bobs_view = await vault.reveal({"notes": copied, "pasted": adas_name}, BOB)
    assert bobs_view.tree == {"notes": adas_name, "pasted": None}
    assert bobs_view.unreadable == 1
    async with scratch_pool.acquire() as conn:
        await vault.erase(conn, "client-ada")
    assert (await vault.reveal({"notes": copied}, BOB)).erased is False


async def test_tokens_sealed_before_records_were_bound_still_open_in_their_clients_records(
    scratch_pool: asyncpg.Pool,
) -> None:
    """A database written by the earlier vault: `enc:v1:<client>:...`, bound to the client id
    only. Its keys and tokens read on as they are, but only where their own client's record
    holds them."""
    master = decode_master_key(generate_master_key())
    vault = KeyVault(scratch_pool, master)
    async with scratch_pool.acquire() as conn:
        await KeyVault.install(conn)
        for client_id in ("client-ada", "client-bob"):  # keys as the earlier vault wrapped them
            key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
            wrapped = nonce + AESGCM(master).encrypt(nonce, key, client_id.encode())
            await conn.execute(
                "INSERT INTO keyvault.client_keys (client_id, wrapped_key) VALUES ($1, $2)",
                client_id,
                wrapped,
            )
        ada_key = await vault._key(conn, "client-ada", create=False)

    def legacy(client_id: str, key: bytes, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), client_id.encode())
        return f"enc:v1:{client_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    old = legacy("client-ada", ada_key, "written by the old vault")
    assert (await vault.reveal({"notes": old}, ADA)).tree == {"notes": "written by the old vault"}
    in_bobs_record = await vault.reveal({"notes": old}, BOB)
    assert in_bobs_record.tree == {"notes": None} and in_bobs_record.unreadable == 1
    async with scratch_pool.acquire() as conn:
        assert (await vault.sealer(conn, ADA))("goals.title", old) == old  # a copy stays as it is
        resealed = (await vault.sealer(conn, BOB))("notes", old)
    assert resealed != old
    assert (await vault.reveal({"notes": resealed}, BOB)).tree == {"notes": old}
