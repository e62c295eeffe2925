"""A witness's decisions (c2sp.org/tlog-witness's answers to `add-checkpoint`) and the directory
it keeps its checkpoints and evidence in."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.model.clock import FixedClock
from shared.transparency.checkpoint import Checkpoint, sign_checkpoint, signer_from_seed
from shared.transparency.cosignature import Ed25519Cosigner, cosignature_time
from shared.transparency.merkle import EMPTY_ROOT, MerkleTree
from shared.transparency.note import Ed25519Signer, Verifiers, open_note, sign_note
from shared.transparency.witness import (
    AddCheckpoint,
    MalformedRequest,
    Verdict,
    conflict_body,
    decide,
    format_add_checkpoint,
    parse_add_checkpoint,
    presented_origin,
)
from shared.transparency.witness_store import WitnessStateError, WitnessStore

ORIGIN = "rapport/intake"
LOG = Ed25519Signer.from_seed(ORIGIN, bytes(range(32)))
KEYS = Verifiers([LOG.verifier()])
LEAVES = [f"event {n}".encode() for n in range(20)]
HONEST = MerkleTree(LEAVES)
FORKED = MerkleTree([*LEAVES[:2], b"rewritten", *LEAVES[3:]])
AT = datetime(2025, 1, 1, tzinfo=UTC)


def signed(size: int, tree: MerkleTree = HONEST, signer: Ed25519Signer = LOG) -> str:
    return sign_checkpoint(signer, Checkpoint(signer.name, size, tree.root(size)))


def checkpoint(size: int, tree: MerkleTree = HONEST) -> Checkpoint:
    return Checkpoint(ORIGIN, size, tree.root(size))


def test_a_first_checkpoint_is_accepted_without_a_proof() -> None:
    decision = decide(None, signed(5), [], KEYS)
    assert decision.verdict is Verdict.ACCEPTED and decision.status == 200
    assert decision.checkpoint == checkpoint(5)
    assert decision.note == signed(5)


def test_a_checkpoint_that_extends_the_one_held_is_accepted() -> None:
    decision = decide(checkpoint(5), signed(12), HONEST.consistency_proof(5, 12), KEYS)
    assert decision.accepted and decision.held_size == 5


def test_the_same_checkpoint_again_is_accepted() -> None:
    assert decide(checkpoint(12), signed(12), [], KEYS).accepted


def test_a_checkpoint_whose_proof_does_not_join_the_one_held_is_a_fork() -> None:
    decision = decide(checkpoint(5), signed(12, FORKED), FORKED.consistency_proof(5, 12), KEYS)
    assert decision.verdict is Verdict.INCONSISTENT and decision.status == 422
    assert decision.is_evidence and decision.checkpoint == checkpoint(12, FORKED)
    assert "no consistency from size 5 to 12" in decision.reason


def test_a_second_root_for_the_size_held_is_a_fork() -> None:
    decision = decide(checkpoint(12), signed(12, FORKED), [], KEYS)
    assert decision.verdict is Verdict.INCONSISTENT
    assert decision.reason == "a fork: two roots for size 12"


def test_an_honest_proof_for_a_rewritten_log_is_refused_as_well() -> None:
    decision = decide(checkpoint(5), signed(12, FORKED), HONEST.consistency_proof(5, 12), KEYS)
    assert decision.verdict is Verdict.INCONSISTENT


def test_a_checkpoint_behind_the_one_held_is_a_conflict_naming_the_size_held() -> None:
    decision = decide(checkpoint(12), signed(5), [], KEYS)
    assert decision.verdict is Verdict.CONFLICT and decision.status == 409
    assert conflict_body(decision.held_size) == "12\n"
    assert not decision.is_evidence


def test_an_old_size_that_is_not_the_size_held_is_a_conflict() -> None:
    decision = decide(checkpoint(12), signed(15), HONEST.consistency_proof(5, 15), KEYS, old_size=5)
    assert decision.verdict is Verdict.CONFLICT and decision.held_size == 12
    first = decide(None, signed(15), HONEST.consistency_proof(5, 15), KEYS, old_size=5)
    assert first.verdict is Verdict.CONFLICT and first.held_size == 0


def test_an_old_size_past_the_checkpoint_is_a_bad_request() -> None:
    decision = decide(checkpoint(12), signed(5), [], KEYS, old_size=12)
    assert decision.verdict is Verdict.MALFORMED and decision.status == 400


def test_a_stated_old_size_that_matches_is_checked_like_the_size_held() -> None:
    proof = HONEST.consistency_proof(12, 15)
    assert decide(checkpoint(12), signed(15), proof, KEYS, old_size=12).accepted


def test_a_checkpoint_with_a_bad_signature_is_forbidden() -> None:
    impostor = Ed25519Signer.from_seed(ORIGIN, bytes(32))
    forged = sign_note(checkpoint(12).text(), [impostor])
    signature = signed(12).split(" ")[-1]
    unknown_id = signed(12).replace(signature[:8], "AAAAAAAA")
    bad_bytes = signed(12).replace(signature[20:28], "AAAAAAAA")
    for note in (forged, unknown_id, bad_bytes):
        decision = decide(checkpoint(5), note, HONEST.consistency_proof(5, 12), KEYS)
        assert decision.verdict is Verdict.BAD_SIGNATURE and decision.status == 403
        assert decision.is_evidence and decision.checkpoint is None


def test_a_checkpoint_of_a_log_the_witness_does_not_know_is_not_found() -> None:
    other = Ed25519Signer.from_seed("rapport/engagement", bytes(32))
    decision = decide(None, signed(3, signer=other), [], KEYS)
    assert decision.verdict is Verdict.UNKNOWN_LOG and decision.status == 404


def test_a_key_named_after_another_log_does_not_vouch_for_this_one() -> None:
    other = Ed25519Signer.from_seed("rapport/engagement", bytes(32))
    note = sign_note(checkpoint(3).text(), [other])
    keys = Verifiers([LOG.verifier(), other.verifier()])
    assert decide(None, note, [], keys).verdict is Verdict.BAD_SIGNATURE


def test_text_that_is_no_signed_checkpoint_is_a_bad_request() -> None:
    for note in ("hello\n", "hello\n\n— x AAAAAAA=\n", sign_note("not\na checkpoint\n", [LOG])):
        assert decide(None, note, [], KEYS).verdict is Verdict.MALFORMED
        assert presented_origin(note) is None


def test_an_empty_checkpoint_needs_the_empty_root_and_nothing_needs_a_proof_from_zero() -> None:
    empty = sign_checkpoint(LOG, Checkpoint(ORIGIN, 0, EMPTY_ROOT))
    assert decide(None, empty, [], KEYS).accepted
    not_empty = sign_checkpoint(LOG, Checkpoint(ORIGIN, 0, HONEST.root(1)))
    assert decide(None, not_empty, [], KEYS).verdict is Verdict.INCONSISTENT
    padded = decide(None, signed(4), HONEST.consistency_proof(1, 4), KEYS)
    assert padded.verdict is Verdict.INCONSISTENT


def test_an_accepted_checkpoint_may_be_cosigned_at_the_clocks_time() -> None:
    cosigner = Ed25519Cosigner.from_seed("witness.example/w1", bytes(32), FixedClock(AT))
    decision = decide(
        checkpoint(5), signed(12), HONEST.consistency_proof(5, 12), KEYS, cosigner=cosigner
    )
    assert decision.cosignature.startswith("— witness.example/w1 ")
    assert decision.note == signed(12) + decision.cosignature
    cosigned = open_note(decision.note, Verifiers([LOG.verifier(), cosigner.verifier()]))
    assert cosignature_time(cosigned.verified[1]) == int(AT.timestamp())
    assert open_note(decision.note, KEYS).text == checkpoint(12).text()


def test_a_held_checkpoint_of_another_log_is_a_mistake_of_the_caller() -> None:
    with pytest.raises(ValueError, match="held is of"):
        decide(Checkpoint("rapport/engagement", 1, HONEST.root(1)), signed(3), [], KEYS)


def test_an_add_checkpoint_request_reads_back_as_it_was_written() -> None:
    proof = HONEST.consistency_proof(5, 12)
    body = format_add_checkpoint(5, proof, signed(12))
    assert body.startswith("old 5\n") and body.endswith("\n\n" + signed(12))
    assert parse_add_checkpoint(body.encode()) == AddCheckpoint(5, tuple(proof), signed(12))
    assert parse_add_checkpoint("old 0\n\n" + signed(3)) == AddCheckpoint(0, (), signed(3))


@pytest.mark.parametrize(
    "body",
    [
        "old 5\n" + "AAAA\n",
        "new 5\n\nnote\n",
        "old 05\n\nnote\n",
        "old 5\nnot base64\n\nnote\n",
        "old 5\n" + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n" * 64 + "\nnote\n",
    ],
)
def test_a_body_that_is_no_add_checkpoint_request_is_refused(body: str) -> None:
    with pytest.raises(MalformedRequest):
        parse_add_checkpoint(body)
    with pytest.raises(MalformedRequest):
        parse_add_checkpoint(b"\xff" + body.encode())


def test_the_store_keeps_what_it_accepts_under_the_origins_directory(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    assert store.submit(signed(5), [], KEYS).decision.accepted
    assert store.submit(signed(12), HONEST.consistency_proof(5, 12), KEYS).decision.accepted
    assert (tmp_path / "rapport%2Fintake" / "checkpoint").read_text() == signed(12)
    assert store.held(ORIGIN, KEYS) == checkpoint(12)
    assert store.evidence(ORIGIN) == []
    assert sorted(p.name for p in (tmp_path / "rapport%2Fintake").iterdir()) == [
        "checkpoint",
        "lock",
    ]


def test_the_store_keeps_both_notes_and_the_proof_of_a_fork(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    store.submit(signed(5), [], KEYS)
    proof = FORKED.consistency_proof(5, 12)
    decision, evidence = store.submit(signed(12, FORKED), proof, KEYS)
    assert decision.verdict is Verdict.INCONSISTENT and evidence is not None
    assert evidence.name == "000001-inconsistent"
    assert (evidence / "held").read_text() == signed(5)
    assert (evidence / "presented").read_text() == signed(12, FORKED)
    assert len((evidence / "proof").read_text().splitlines()) == len(proof)
    assert (evidence / "reason").read_text().startswith("inconsistent: no consistency from")
    assert store.held(ORIGIN, KEYS) == checkpoint(5)
    _, second = store.submit(signed(5, FORKED), [], KEYS)
    assert second is not None and second.name == "000002-inconsistent"
    assert store.evidence(ORIGIN) == [evidence, second]


def test_the_store_keeps_a_badly_signed_note_as_evidence(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    impostor = Ed25519Signer.from_seed(ORIGIN, bytes(32))
    decision, evidence = store.submit(sign_note(checkpoint(3).text(), [impostor]), [], KEYS)
    assert decision.verdict is Verdict.BAD_SIGNATURE and evidence is not None
    assert not (evidence / "held").exists() and (evidence / "presented").exists()
    assert store.held(ORIGIN, KEYS) is None


def test_the_store_writes_nothing_for_an_unknown_log_or_a_stale_checkpoint(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    other = Ed25519Signer.from_seed("rapport/engagement", bytes(32))
    assert store.submit(signed(3, signer=other), [], KEYS) == (
        decide(None, signed(3, signer=other), [], KEYS),
        None,
    )
    assert list(tmp_path.iterdir()) == []
    store.submit(signed(12), [], KEYS)
    decision, evidence = store.submit(signed(5), [], KEYS)
    assert decision.verdict is Verdict.CONFLICT and evidence is None
    assert store.held(ORIGIN, KEYS) == checkpoint(12)


def test_a_failed_write_leaves_the_checkpoint_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = WitnessStore(tmp_path)
    store.submit(signed(5), [], KEYS)

    def crash(source: str, target: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.submit(signed(12), HONEST.consistency_proof(5, 12), KEYS)
    monkeypatch.undo()
    assert store.held(ORIGIN, KEYS) == checkpoint(5)
    assert sorted(p.name for p in store.log_directory(ORIGIN).iterdir()) == ["checkpoint", "lock"]


def test_a_held_checkpoint_that_no_longer_verifies_stops_the_witness(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    store.submit(signed(5), [], KEYS)
    path = store.log_directory(ORIGIN) / "checkpoint"
    path.write_text(path.read_text().replace("\n5\n", "\n6\n"))
    with pytest.raises(WitnessStateError):
        store.submit(signed(12), HONEST.consistency_proof(5, 12), KEYS)


def test_the_store_keeps_the_cosigned_note(tmp_path: Path) -> None:
    cosigner = Ed25519Cosigner.from_seed("witness.example/w1", bytes(32), FixedClock(AT))
    store = WitnessStore(tmp_path)
    decision, _ = store.submit(signed(5), [], KEYS, cosigner=cosigner)
    assert store.held_note(ORIGIN) == decision.note == signed(5) + decision.cosignature
    assert store.held(ORIGIN, KEYS) == checkpoint(5)


def test_an_origin_becomes_a_directory_name_that_cannot_escape(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path)
    assert store.log_directory("../..").name == "%2E%2E%2F%2E%2E"
    assert store.log_directory("é").name == "%C3%A9"
    with pytest.raises(WitnessStateError):
        store.log_directory("x" * 201)


def test_signing_keys_from_a_seed_work_in_the_witness() -> None:
    signer = signer_from_seed("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", ORIGIN)
    assert signer.public_key == LOG.public_key
