"""Per-client keys: sealing, revealing, erasure."""

from __future__ import annotations

import asyncpg

from shared.crypto import KeyVault, decode_master_key, generate_master_key, is_token


async def test_values_are_sealed_per_client_and_revealed_until_the_key_is_erased(
    scratch_pool: asyncpg.Pool,
) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    async with scratch_pool.acquire() as conn:
        seal_ada = await vault.encryptor(conn, "client-ada")
        seal_bob = await vault.encryptor(conn, "client-bob")
    ada, bob = seal_ada("Ada's secret"), seal_bob("Bob's secret")
    assert is_token(ada) and "secret" not in ada and seal_ada(ada) == ada
    assert seal_ada("Ada's secret") != ada  # a fresh nonce every time
    tree = {"notes": ada, "nested": [{"text": bob}], "score": 3}
    revealed, erased = await vault.reveal(tree)
    assert revealed == {"notes": "Ada's secret", "nested": [{"text": "Bob's secret"}], "score": 3}
    assert erased is False

    async with scratch_pool.acquire() as conn:
        assert await vault.erase(conn, "client-ada") is True
        assert await vault.erase(conn, "client-ada") is False
    revealed, erased = await vault.reveal(tree)
    assert revealed == {"notes": None, "nested": [{"text": "Bob's secret"}], "score": 3}
    assert erased is True

    async with scratch_pool.acquire() as conn:
        after = await vault.encryptor(conn, "client-ada")
    dropped = after("written after erasure")
    assert is_token(dropped) and "erasure" not in dropped
    assert (await vault.reveal({"late": dropped}))[0] == {"late": None}


async def test_unauthorised_readers_see_no_personal_values(scratch_pool: asyncpg.Pool) -> None:
    vault = KeyVault(scratch_pool, decode_master_key(generate_master_key()))
    async with scratch_pool.acquire() as conn:
        token = (await vault.encryptor(conn, "client-c"))("hidden")
    revealed, _ = await vault.reveal({"name": token}, authorised=False)
    assert revealed == {"name": None}
