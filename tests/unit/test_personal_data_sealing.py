"""The vault's sealing and revealing, as pure functions: a value opens only in the record it was
sealed into, request text is always sealed as text, and no input makes a read fail."""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from shared.security.crypto import (
    UNREADABLE,
    Record,
    is_token,
    open_token,
    protector,
    reveal_tree,
    seal_text,
)

KEYS = {client: AESGCM.generate_key(bit_length=256) for client in ("ada", "bob")}
ADA = Record("ada", "engagement-1")
BOB = Record("bob", "engagement-2")
ADA_ELSEWHERE = Record("ada", "engagement-3")

texts = st.text(max_size=300)
# Strings shaped like tokens: every prefix, field and body an attacker might try.
forged = st.builds(
    lambda version, middle, body: f"enc:{version}:{middle}:{body}",
    st.sampled_from(["v1", "v2", "v3", ""]),
    st.sampled_from(["ada", "bob", "notes", "client.name", "", "zz"]),
    st.one_of(
        st.text(max_size=80), st.binary(max_size=80).map(lambda raw: base64.b64encode(raw).decode())
    ),
)
json_trees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), texts, forged),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def legacy_token(client_id: str, plaintext: str) -> str:
    """A token as the vault wrote it before values were bound to records."""
    nonce = os.urandom(12)
    sealed = AESGCM(KEYS[client_id]).encrypt(nonce, plaintext.encode(), client_id.encode())
    return f"enc:v1:{client_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


@given(texts)
def test_a_value_sealed_into_a_record_opens_there_and_only_there(plaintext: str) -> None:
    token = seal_text(KEYS["ada"], ADA, "notes", plaintext)
    assert is_token(token) and open_token(KEYS["ada"], ADA, token) == plaintext
    for key, record in ((KEYS["bob"], BOB), (KEYS["ada"], ADA_ELSEWHERE), (KEYS["bob"], ADA)):
        assert reveal_tree({"notes": token}, key, record).tree == {"notes": None}


@given(texts)
def test_another_clients_token_sent_as_text_is_sealed_as_that_text(plaintext: str) -> None:
    adas = seal_text(KEYS["ada"], ADA, "client.name", plaintext)
    sealed_for_bob = protector(KEYS["bob"], BOB)("notes", adas)
    assert sealed_for_bob != adas
    revealed = reveal_tree({"notes": sealed_for_bob}, KEYS["bob"], BOB)
    assert revealed.tree == {"notes": adas}  # Bob reads back the ciphertext, never Ada's text
    assert revealed.unreadable == 0


@given(forged)
def test_text_shaped_like_a_token_is_sealed_and_read_back_as_sent(text: str) -> None:
    sealed = protector(KEYS["bob"], BOB)("title", text)
    assert sealed != text and text not in sealed
    assert reveal_tree({"title": sealed}, KEYS["bob"], BOB).tree == {"title": text}


@given(texts)
def test_a_records_own_token_copied_within_it_is_kept_as_it_is(plaintext: str) -> None:
    token = seal_text(KEYS["ada"], ADA, "goals.title", plaintext)
    assert protector(KEYS["ada"], ADA)("goals.title", token) == token
    assert protector(KEYS["ada"], ADA_ELSEWHERE)("goals.title", token) != token


@given(json_trees, st.sampled_from([ADA, BOB, ADA_ELSEWHERE]), st.booleans())
def test_no_tree_makes_a_read_fail(tree: Any, record: Record, erased: bool) -> None:
    key = None if erased else KEYS[record.client_id]
    revealed = reveal_tree(tree, key, record, erased=erased)
    assert revealed.erased is erased and revealed.unreadable >= 0


@given(json_trees)
def test_no_request_makes_a_record_reveal_another_clients_text(tree: Any) -> None:
    """Whatever Bob's record is sent (Ada's tokens included), revealing it never yields text
    that only Ada's key opens."""
    secret = "Ada's secret " + os.urandom(4).hex()
    adas_token = seal_text(KEYS["ada"], ADA, "client.name", secret)
    protect = protector(KEYS["bob"], BOB)
    sent = {"tree": str(tree), "copied": adas_token, "legacy": legacy_token("ada", secret)}
    stored = {field: protect(field, value) for field, value in sent.items()}
    revealed = reveal_tree(stored, KEYS["bob"], BOB).tree
    assert secret not in repr(revealed)
    assert revealed == sent


def test_tokens_written_before_binding_open_only_in_their_own_clients_records() -> None:
    old = legacy_token("ada", "written by the old vault")
    assert open_token(KEYS["ada"], ADA, old) == "written by the old vault"
    assert reveal_tree({"n": old}, KEYS["bob"], BOB).tree == {"n": None}
    bobs_key_claiming_ada = legacy_token("bob", "x").replace("enc:v1:bob:", "enc:v1:ada:")
    assert reveal_tree({"n": bobs_key_claiming_ada}, KEYS["bob"], BOB).unreadable == 1


def test_a_value_that_does_not_decrypt_reads_null_and_is_counted() -> None:
    before = UNREADABLE._value.get()
    forged_token = "enc:v2:comment:" + base64.urlsafe_b64encode(os.urandom(40)).decode()
    revealed = reveal_tree({"comment": forged_token, "n": 1}, KEYS["ada"], ADA)
    assert revealed.tree == {"comment": None, "n": 1}
    assert revealed.unreadable == 1 and revealed.erased is False
    assert UNREADABLE._value.get() == before + 1


def test_an_erased_clients_values_read_null_and_new_ones_are_dropped() -> None:
    token = seal_text(KEYS["ada"], ADA, "notes", "gone")
    revealed = reveal_tree({"notes": token}, None, ADA, erased=True)
    assert revealed.tree == {"notes": None} and revealed.erased and revealed.unreadable == 0
    dropped = protector(None, ADA)("notes", "written after erasure")
    assert "erasure" not in dropped
    assert reveal_tree({"notes": dropped}, KEYS["ada"], ADA).tree == {"notes": None}
