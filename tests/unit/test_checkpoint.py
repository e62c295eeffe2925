"""C2SP tlog-checkpoints: the body's strict format, signing under the origin's key, and the
key material of contract section 10 (`RAPPORT_SIGNING_KEY`, verifier keys)."""

from __future__ import annotations

import base64

import pytest

from shared.transparency.checkpoint import (
    Checkpoint,
    CheckpointError,
    NotSignedByLog,
    checkpoint_origin,
    generate_seed,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    signer_from_seed,
    verifier_key,
)
from shared.transparency.merkle import EMPTY_ROOT, MerkleTree
from shared.transparency.note import (
    InvalidKey,
    InvalidSignature,
    UnverifiedNote,
    Verifiers,
    open_note,
    parse_note,
    parse_verifier_key,
    sign_note,
)

SEED = base64.urlsafe_b64encode(bytes(range(32))).decode()
# c2sp.org/tlog-checkpoint's example
SOFA = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcy"
    "v2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def test_the_c2sp_example_checkpoint_parses_into_origin_size_and_root() -> None:
    checkpoint = parse_checkpoint(parse_note(SOFA).text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()


def test_a_checkpoint_is_written_as_three_lines_then_its_extension_lines() -> None:
    root = MerkleTree([b"a", b"b", b"c"]).root()
    checkpoint = Checkpoint("rapport/intake", 3, root, ("ext one", "two"))
    assert checkpoint.text() == (
        f"rapport/intake\n3\n{base64.b64encode(root).decode()}\next one\ntwo\n"
    )
    assert parse_checkpoint(checkpoint.text()) == checkpoint
    assert Checkpoint("rapport/intake", 0, EMPTY_ROOT).text() == (
        "rapport/intake\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )


ROOT = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize(
    "text",
    [
        f"log\n1\n{ROOT}",
        "log\n1\n",
        f"\n1\n{ROOT}\n",
        f"log\n01\n{ROOT}\n",
        f"log\n-1\n{ROOT}\n",
        f"log\n+1\n{ROOT}\n",
        f"log\n 1\n{ROOT}\n",
        f"log\n\u0661\n{ROOT}\n",
        f"log\n18446744073709551616\n{ROOT}\n",
        f"log\nbananas\n{ROOT}\n",
        "log\n1\nYmFuYW5hcw==\n",
        "log\n1\nThisIsn'tBase64\n",
        f"log\n1\n{ROOT[:-1]}\n",
        f"log\n1\n{ROOT.replace('=', 'V')}\n",
        f"log\n1\n{ROOT}\n\n",
        f"log\n1\n{ROOT}\next\n\n",
        f"log\n1\n{ROOT}\nt\tab\n",
    ],
)
def test_text_that_is_not_exactly_a_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


def test_the_largest_size_is_two_to_the_64_minus_one() -> None:
    assert parse_checkpoint(f"log\n18446744073709551615\n{ROOT}\n").size == 2**64 - 1


def test_a_signed_checkpoint_opens_under_its_origins_verifier_key() -> None:
    signer = signer_from_seed(SEED, "rapport/intake")
    checkpoint = Checkpoint("rapport/intake", 1, MerkleTree([b"e"]).root())
    note = sign_checkpoint(signer, checkpoint)
    vkey = verifier_key("rapport/intake", signer.public_key)
    assert vkey == signer.verifier().vkey
    assert open_checkpoint(note, Verifiers([parse_verifier_key(vkey)])) == checkpoint


def test_a_checkpoint_with_a_changed_root_or_size_does_not_open() -> None:
    signer = signer_from_seed(SEED, "rapport/intake")
    note = sign_checkpoint(signer, Checkpoint("rapport/intake", 1, MerkleTree([b"e"]).root()))
    keys = Verifiers([signer.verifier()])
    with pytest.raises(InvalidSignature):
        open_checkpoint(note.replace("\n1\n", "\n2\n", 1), keys)
    other = base64.b64encode(MerkleTree([b"f"]).root()).decode()
    with pytest.raises(InvalidSignature):
        open_checkpoint(note.replace(parse_note(note).text.split("\n")[2], other), keys)
    another_key = signer_from_seed(generate_seed(), "rapport/intake").verifier()
    with pytest.raises(UnverifiedNote):
        open_checkpoint(note, Verifiers([another_key]))


def test_a_checkpoint_signed_by_a_key_named_after_another_log_does_not_open() -> None:
    engagement = signer_from_seed(SEED, "rapport/engagement")
    forged = Checkpoint("rapport/intake", 0, EMPTY_ROOT).text()
    note = sign_note(forged, [engagement])
    assert open_note(note, Verifiers([engagement.verifier()])).text == forged
    with pytest.raises(NotSignedByLog):
        open_checkpoint(note, Verifiers([engagement.verifier()]))
    with pytest.raises(InvalidKey):
        sign_checkpoint(engagement, Checkpoint("rapport/intake", 0, EMPTY_ROOT))


def test_a_generated_seed_is_base64url_of_32_bytes_and_gives_a_stable_key() -> None:
    seed = generate_seed()
    assert len(base64.urlsafe_b64decode(seed)) == 32
    assert seed != generate_seed()
    first, again = (
        signer_from_seed(seed, "rapport/intake"),
        signer_from_seed(seed, "rapport/intake"),
    )
    assert first.verifier().vkey == again.verifier().vkey
    assert signer_from_seed(seed.rstrip("="), "rapport/intake").public_key == first.public_key


@pytest.mark.parametrize(
    "seed",
    [
        "",
        base64.urlsafe_b64encode(bytes(31)).decode(),
        base64.urlsafe_b64encode(bytes(33)).decode(),
        base64.b64encode(bytes([0xFB]) * 32).decode(),
        SEED + "=",
        " " + SEED,
        SEED[:-2] + "B=",
    ],
)
def test_a_signing_key_that_is_not_a_base64url_32_byte_seed_is_refused_without_echoing_it(
    seed: str,
) -> None:
    with pytest.raises(InvalidKey) as refused:
        signer_from_seed(seed, "rapport/intake")
    assert not seed or seed.strip("= ") not in str(refused.value)


def test_an_origin_is_the_prefix_and_the_service() -> None:
    assert checkpoint_origin("intake") == "rapport/intake"
    assert checkpoint_origin("engagement", "acme.example/rapport") == (
        "acme.example/rapport/engagement"
    )
    for prefix, service in (("", "intake"), ("a b", "intake"), ("rapport", "x+y")):
        with pytest.raises(InvalidKey):
            checkpoint_origin(service, prefix)


def test_a_checkpoint_holds_a_32_byte_root_and_a_size_within_64_bits() -> None:
    for size, root in ((-1, EMPTY_ROOT), (2**64, EMPTY_ROOT), (1, b"short")):
        with pytest.raises(CheckpointError):
            Checkpoint("log", size, root)
    with pytest.raises(CheckpointError):
        Checkpoint("two\nlines", 0, EMPTY_ROOT)
