"""C2SP signed notes against golang.org/x/mod/sumdb/note's fixed keys and notes
(sumdb/note/note_test.go), the examples of c2sp.org/signed-note and tlog-cosignature, and a
checkpoint a public log and its witnesses signed (tests/vectors/checkpoints)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.model.clock import FixedClock
from shared.transparency.cosignature import (
    Ed25519Cosigner,
    cosignature_time,
    cosigned_message,
    parse_cosigner_key,
)
from shared.transparency.note import (
    Ed25519Signer,
    Ed25519Verifier,
    InvalidKey,
    InvalidSignature,
    MalformedNote,
    Signature,
    UnverifiedNote,
    Verifiers,
    decode_verifier_key,
    is_valid_key_name,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

# golang.org/x/mod sumdb/note/note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb"
    "6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33W"
    "Wd1RvMc+QQ=\n"
)

# c2sp.org/signed-note, "Verifier keys: Example"
EXAMPLE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
EXAMPLE_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONn"
    "cAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/signed-note, its opening example (no key published for it)
POEM = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouF"
    "SQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

PUBLISHED = json.loads(
    (
        Path(__file__).resolve().parents[1] / "vectors/checkpoints/arche2025h1-staging.json"
    ).read_text(encoding="utf-8")
)


def peter() -> Verifiers:
    return Verifiers([parse_verifier_key(PETER_VKEY)])


def both() -> Verifiers:
    return Verifiers([parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)])


def test_go_notes_signer_key_signs_its_note_to_the_very_bytes() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG
    assert signer.verifier().vkey == PETER_VKEY
    assert signer.signer_key() == PETER_SKEY


def test_signing_again_replaces_the_signers_own_signature_and_keeps_the_others() -> None:
    signer = parse_signer_key(PETER_SKEY)
    old = Signature("PeterNeumann", 0xC74F20A3, b"stale")
    enoch = parse_note(TEXT + "\n" + ENOCH_SIG).unverified[0]
    assert sign_note(TEXT, [signer], [old, enoch]) == TEXT + "\n" + ENOCH_SIG + PETER_SIG


def test_a_note_is_only_signed_when_it_is_note_text() -> None:
    signer = parse_signer_key(PETER_SKEY)
    for text in ("abc", "a\x01b\n", "tab\there\n", "lone \udc80\n"):
        with pytest.raises(MalformedNote):
            sign_note(text, [signer])
    with pytest.raises(MalformedNote):
        sign_note(TEXT, [])


def test_a_note_with_one_known_signature_verifies_and_keeps_the_other_unverified() -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter())
    assert note.text == TEXT
    assert [(s.name, s.key_id) for s in note.verified] == [("PeterNeumann", 0xC74F20A3)]
    assert [(s.name, s.key_id) for s in note.unverified] == [("EnochRoot", 0xAF0CFE78)]


def test_a_note_signed_by_two_known_keys_verifies_both() -> None:
    note = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), both())
    assert [s.name for s in note.verified] == ["PeterNeumann", "EnochRoot"]
    assert note.unverified == ()


def test_a_note_no_known_key_signed_is_refused_with_what_it_carried() -> None:
    with pytest.raises(UnverifiedNote) as refused:
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, Verifiers())
    assert [s.name for s in refused.value.note.unverified] == ["PeterNeumann", "EnochRoot"]
    assert "PeterNeumann+c74f20a3" in str(refused.value)


def test_a_known_keys_bad_signature_refuses_the_whole_note() -> None:
    broken = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignature, match="PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + broken, peter())
    with pytest.raises(InvalidSignature):
        open_note(TEXT + "\n" + broken + PETER_SIG, peter())


def test_repeated_signatures_count_once() -> None:
    enoch_broken = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    message = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_broken
    note = open_note(message, peter())
    assert len(note.verified) == 1
    assert [s.name for s in note.unverified] == ["EnochRoot", "EnochRoot"]


def test_a_key_known_by_its_name_alone_or_its_id_alone_is_unknown() -> None:
    renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    with pytest.raises(UnverifiedNote):
        open_note(TEXT + "\n" + renamed, peter())
    other_id = PETER_SIG.replace("x08g", "xxxx")
    with pytest.raises(UnverifiedNote):
        open_note(TEXT + "\n" + other_id, peter())


def test_up_to_a_hundred_signatures_are_read_and_no_more() -> None:
    assert open_note(TEXT + "\n" + PETER_SIG * 100, peter()).verified
    for verifiers in (peter(), Verifiers()):
        with pytest.raises(MalformedNote):
            open_note(TEXT + "\n" + PETER_SIG * 101, verifiers)


@pytest.mark.parametrize(
    "message",
    [
        TEXT.encode(),
        (TEXT + "\n").encode(),
        (TEXT + "\n" + PETER_SIG[:-1]).encode(),
        ("\x01" + TEXT + "\n" + PETER_SIG).encode(),
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        (TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2]).encode(),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n").encode(),
        (TEXT + "\n" + PETER_SIG.replace("— ", "- ")).encode(),
        (TEXT + "\n" + PETER_SIG.replace("AM=", "AM")).encode(),
        (TEXT + "\n" + "— PeterNeumann AAAA\n").encode(),
        (TEXT + "\r\n" + PETER_SIG).encode(),
    ],
)
def test_text_that_is_not_a_signed_note_is_malformed(message: bytes) -> None:
    with pytest.raises(MalformedNote):
        open_note(message, peter())


def test_the_signatures_follow_the_last_blank_line() -> None:
    text = "first\n\nsecond\n"
    signer = parse_signer_key(PETER_SKEY)
    assert open_note(sign_note(text, [signer]), peter()).text == text


def manglings(text: str) -> Iterator[str]:
    """Every part of `text` but the whole, and `text` with any one character moved up by one."""
    for start in range(len(text) + 1):
        for end in range(start + 1, len(text) + 1):
            if (start, end) != (0, len(text)):
                yield text[start:end]
    for position, character in enumerate(text):
        yield text[:position] + chr(ord(character) + 1) + text[position + 1 :]


def accepted(parse: Callable[[str], object], texts: Iterable[str]) -> list[str]:
    taken = []
    for text in texts:
        with suppress(InvalidKey):
            parse(text)
            taken.append(text)
    return taken


def test_go_notes_verifier_key_parses_and_no_substring_or_changed_byte_of_it_does() -> None:
    verifier = parse_verifier_key(PETER_VKEY)
    assert (verifier.name, verifier.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert verifier.vkey == PETER_VKEY
    assert accepted(parse_verifier_key, manglings(PETER_VKEY)) == []


def test_go_notes_signer_key_parses_and_no_substring_or_changed_byte_of_it_does() -> None:
    assert parse_signer_key(PETER_SKEY).name == "PeterNeumann"
    assert accepted(parse_signer_key, manglings(PETER_SKEY)) == []


def test_keys_of_the_wrong_length_or_an_unknown_type_are_refused_even_with_a_fitting_id() -> None:
    for vkey in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(InvalidKey):
            parse_verifier_key(vkey)


def test_a_key_id_is_the_first_four_bytes_of_the_hash_of_name_newline_type_and_key() -> None:
    parts = decode_verifier_key(EXAMPLE_VKEY)
    assert parts.public_key.hex() == (
        "e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4"
    )
    assert (parts.type, parts.key_id) == (1, 0x530D903A)
    assert key_id("example.com/foo", bytes([1]) + parts.public_key) == 0x530D903A


def test_the_c2sp_example_note_verifies_under_its_example_key() -> None:
    note = open_note(EXAMPLE_NOTE, Verifiers([parse_verifier_key(EXAMPLE_VKEY)]))
    assert note.text == "This is an example message.\n"


def test_the_c2sp_opening_example_parses_into_its_text_and_one_signature() -> None:
    note = parse_note(POEM)
    assert note.text.endswith("ed è subito sera.\n")
    assert [s.name for s in note.unverified] == ["quasimodo.example/salvatore"]


def test_verifiers_refuse_two_different_keys_under_one_name_and_id() -> None:
    peter_key = parse_verifier_key(PETER_VKEY)
    assert len(Verifiers([peter_key, parse_verifier_key(PETER_VKEY)])) == 1

    class Impostor:
        name = peter_key.name
        key_id = peter_key.key_id
        vkey = "PeterNeumann+c74f20a3+impostor"

        def verify(self, message: bytes, signature: bytes) -> bool:
            return True

    with pytest.raises(InvalidKey, match="two different keys"):
        Verifiers([peter_key, Impostor()])


def test_key_names_have_no_spaces_plus_signs_or_controls() -> None:
    assert is_valid_key_name("rapport/intake")
    for name in ("", "a b", "a+b", "a\u00a0b", "a\u3000b", "a\x01b"):
        assert not is_valid_key_name(name)
    with pytest.raises(InvalidKey):
        Ed25519Verifier("a b", bytes(32))


def test_a_fresh_key_pair_signs_and_verifies_and_refuses_a_changed_message() -> None:
    signer = Ed25519Signer.from_seed("EnochRoot", bytes(range(32)))
    verifier = signer.verifier()
    signature = signer.sign(b"hi")
    assert verifier.verify(b"hi", signature)
    assert not verifier.verify(b"hi!", signature)
    assert not verifier.verify(b"hi", bytes([signature[0] ^ 1]) + signature[1:])
    assert parse_signer_key(signer.signer_key()).verifier() == verifier


def test_a_published_checkpoint_verifies_under_its_logs_key_and_a_witness_cosignature() -> None:
    log = parse_verifier_key(PUBLISHED["log_verifier_key"])
    witness = parse_cosigner_key(PUBLISHED["cosigner_verifier_key"])
    note = open_note(PUBLISHED["note"], Verifiers([log, witness]))
    assert [s.name for s in note.verified] == [log.name, witness.name]
    assert len(note.unverified) == 4
    assert cosignature_time(note.verified[1]) == PUBLISHED["cosignature_time"]


def test_a_published_cosignature_does_not_cover_another_size() -> None:
    witness = parse_cosigner_key(PUBLISHED["cosigner_verifier_key"])
    forged = PUBLISHED["note"].replace(str(PUBLISHED["size"]), "42", 1)
    with pytest.raises(InvalidSignature):
        open_note(forged, Verifiers([witness]))


def test_a_cosignature_signs_its_header_time_and_the_text() -> None:
    at = datetime(2023, 3, 20, 12, 25, 47, tzinfo=UTC)
    cosigner = Ed25519Cosigner.from_seed("witness.example/w1", bytes(32), FixedClock(at))
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosigned_message(text.encode(), 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + text.encode()
    )
    note = open_note(sign_note(text, [cosigner]), Verifiers([cosigner.verifier()]))
    assert cosignature_time(note.verified[0]) == int(at.timestamp()) == 1679315147
    assert cosigner.verifier().vkey.split("+")[2].startswith("B")  # type 0x04
    with pytest.raises(UnverifiedNote):
        open_note(sign_note(text, [cosigner]), Verifiers([parse_verifier_key(PETER_VKEY)]))


def test_a_cosigner_key_is_not_a_log_key_and_the_other_way_round() -> None:
    with pytest.raises(InvalidKey):
        parse_cosigner_key(PETER_VKEY)
    with pytest.raises(InvalidKey):
        parse_verifier_key(PUBLISHED["cosigner_verifier_key"])
