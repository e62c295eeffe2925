"""The Merkle tree against published vectors: RFC 6962's reference tree and transparency-dev's
probes (tests/vectors/merkle, gathered unchanged from github.com/transparency-dev/merkle)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shared.transparency.merkle import (
    EMPTY_ROOT,
    CompactTree,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle"
REFERENCE = json.loads((VECTORS / "rfc6962-reference-tree.json").read_text())
LEAVES = [bytes.fromhex(leaf) for leaf in REFERENCE["leaves"]]
ROOTS = [bytes.fromhex(root) for root in REFERENCE["roots"]]


def probes(kind: str) -> list[dict[str, Any]]:
    document = json.loads((VECTORS / f"transparency-dev-{kind}.json").read_text())
    return list(document["probes"])


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def test_the_hashes_are_rfc_6962s() -> None:
    empty, empty_leaf, leaf, node = REFERENCE["hashes"]
    assert EMPTY_ROOT.hex() == empty["hash"]
    assert leaf_hash(b"").hex() == empty_leaf["hash"]
    assert leaf_hash(bytes.fromhex(leaf["leaf"])).hex() == leaf["hash"]
    assert (
        node_hash(bytes.fromhex(node["left"]), bytes.fromhex(node["right"])).hex() == (node["hash"])
    )


def test_the_reference_tree_has_the_published_root_at_every_size() -> None:
    tree = MerkleTree(LEAVES)
    compact = CompactTree()
    assert compact.root() == ROOTS[0]
    for size, leaf in enumerate(LEAVES, start=1):
        compact.append(leaf)
        assert compact.root() == ROOTS[size]
    assert [tree.root(size) for size in range(len(LEAVES) + 1)] == ROOTS


def test_the_reference_tree_holds_the_published_node_hashes() -> None:
    tree = MerkleTree(LEAVES)
    for level, row in enumerate(REFERENCE["node_hashes"]):
        assert [tree.node(level, index).hex() for index in range(len(row))] == row


def test_the_reference_trees_compact_states_are_its_perfect_subtrees() -> None:
    nodes = REFERENCE["node_hashes"]
    assert CompactTree().hashes == ()
    compact = CompactTree()
    for leaf in LEAVES[:7]:
        compact.append(leaf)
    assert [value.hex() for value in compact.hashes] == [nodes[2][0], nodes[1][2], nodes[0][6]]


@pytest.mark.parametrize("case", REFERENCE["inclusion_proofs"], ids=str)
def test_the_reference_trees_inclusion_proofs_are_the_published_ones(case: dict[str, Any]) -> None:
    tree = MerkleTree(LEAVES)
    index, size, proof = case["index"], case["size"], hexes(case["proof"])
    assert tree.inclusion_proof(index, size) == proof
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize("case", REFERENCE["consistency_proofs"], ids=str)
def test_the_reference_trees_consistency_proofs_are_the_published_ones(
    case: dict[str, Any],
) -> None:
    tree = MerkleTree(LEAVES)
    size1, size2, proof = case["size1"], case["size2"], hexes(case["proof"])
    assert tree.consistency_proof(size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def test_the_probe_files_are_all_there() -> None:
    assert len(probes("inclusion")) == 98
    assert len(probes("consistency")) == 98
    assert sum(not probe["wantErr"] for probe in probes("inclusion")) == 6
    assert sum(not probe["wantErr"] for probe in probes("consistency")) == 6


@pytest.mark.parametrize("probe", probes("inclusion"), ids=lambda probe: probe["file"])
def test_every_inclusion_probe_verifies_exactly_when_it_should(probe: dict[str, Any]) -> None:
    arguments = (
        unb64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        [unb64(value) for value in probe["proof"] or []],
        unb64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*arguments)
    else:
        verify_inclusion(*arguments)


@pytest.mark.parametrize("probe", probes("consistency"), ids=lambda probe: probe["file"])
def test_every_consistency_probe_verifies_exactly_when_it_should(probe: dict[str, Any]) -> None:
    arguments = (
        probe["size1"],
        probe["size2"],
        [unb64(value) for value in probe["proof"] or []],
        unb64(probe["root1"]),
        unb64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*arguments)
    else:
        verify_consistency(*arguments)
