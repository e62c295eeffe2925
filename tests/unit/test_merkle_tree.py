"""The Merkle tree's interface: saved states, bounds and the errors that name what is wrong."""

from __future__ import annotations

import json

import pytest

from shared.transparency.merkle import (
    EMPTY_ROOT,
    CompactTree,
    HashSizeError,
    IndexOutOfRange,
    InvalidSizes,
    MerkleTree,
    Node,
    ProofLengthError,
    RootMismatch,
    TreeStateError,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    leaf_hash,
    range_nodes,
    range_root,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes([n]) * 32 for n in range(13)]


def test_an_empty_tree_has_the_hash_of_nothing_for_root() -> None:
    assert CompactTree().root() == EMPTY_ROOT == MerkleTree().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_tree_state_survives_json_and_names_its_subtrees() -> None:
    tree = CompactTree()
    for leaf in LEAVES:
        tree.append(leaf)
    restored = CompactTree.from_state(json.loads(json.dumps(tree.state())))
    assert restored == tree
    assert restored.root() == MerkleTree(LEAVES).root()
    assert [(node.level, node.index) for node in restored.subtrees()] == [(3, 0), (2, 2), (0, 12)]


def test_a_copy_grows_apart_from_its_original() -> None:
    tree = CompactTree()
    tree.append(LEAVES[0])
    copy = tree.copy()
    copy.append(LEAVES[1])
    assert (tree.size, copy.size) == (1, 2)


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"size": 1},
        {"size": "1", "hashes": ["00" * 32]},
        {"size": True, "hashes": ["00" * 32]},
        {"size": 1, "hashes": []},
        {"size": 3, "hashes": ["00" * 32]},
        {"size": -1, "hashes": []},
        {"size": 1, "hashes": ["00" * 31]},
        {"size": 1, "hashes": ["zz" * 32]},
        {"size": 1, "hashes": [0]},
        {"size": 1, "hashes": ["00" * 32], "root": "00"},
    ],
)
def test_a_state_that_no_tree_has_is_refused(state: object) -> None:
    with pytest.raises(TreeStateError):
        CompactTree.from_state(state)


def test_an_append_names_the_subtrees_it_completes() -> None:
    tree = CompactTree()
    for leaf in LEAVES[:3]:
        tree.append(leaf)
    completed = tree.append(LEAVES[3])
    assert [(node.level, node.index) for node in completed] == [(0, 3), (1, 1), (2, 0)]
    assert completed[-1] == Node(2, 0, tree.root())
    assert completed[0].hash == leaf_hash(LEAVES[3])


def test_a_leaf_hash_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(HashSizeError):
        CompactTree().append_hash(b"short")


def test_a_whole_tree_answers_for_every_earlier_size() -> None:
    tree = MerkleTree(LEAVES)
    for size in range(len(LEAVES) + 1):
        assert tree.root(size) == MerkleTree(LEAVES[:size]).root()
        assert tree.compact(size) == MerkleTree(LEAVES[:size]).compact()


def test_a_whole_tree_refuses_sizes_and_nodes_it_does_not_have() -> None:
    tree = MerkleTree(LEAVES)
    with pytest.raises(InvalidSizes):
        tree.root(14)
    with pytest.raises(InvalidSizes):
        tree.inclusion_proof(0, 14)
    with pytest.raises(InvalidSizes):
        tree.consistency_proof(1, 14)
    with pytest.raises(InvalidSizes):
        tree.node(2, 3)
    with pytest.raises(InvalidSizes):
        tree.node(9, 0)
    with pytest.raises(InvalidSizes):
        tree.hash_range(12, 14)


def test_proofs_need_an_index_within_the_tree_and_ordered_sizes() -> None:
    with pytest.raises(IndexOutOfRange):
        inclusion_proof_ranges(5, 5)
    with pytest.raises(IndexOutOfRange):
        inclusion_proof_ranges(-1, 5)
    for size1, size2 in ((0, 4), (5, 4), (-1, 4)):
        with pytest.raises(InvalidSizes):
            consistency_proof_ranges(size1, size2)
    assert consistency_proof_ranges(4, 4) == []


def test_a_range_root_is_built_from_the_perfect_subtrees_of_an_aligned_range() -> None:
    tree = MerkleTree(LEAVES)
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    assert range_root(8, 13, tree.node) == MerkleTree(LEAVES[8:13]).root()
    for start, end in ((3, 5), (4, 9), (5, 5), (-1, 0)):
        with pytest.raises(InvalidSizes):
            range_nodes(start, end)


def test_a_proof_of_the_wrong_length_says_how_long_it_should_be() -> None:
    tree = MerkleTree(LEAVES)
    proof = tree.inclusion_proof(6, 13)
    with pytest.raises(ProofLengthError) as short:
        root_from_inclusion_proof(tree.leaf_hash(6), 6, 13, proof[:-1])
    assert (short.value.got, short.value.want) == (len(proof) - 1, len(proof))
    consistency = tree.consistency_proof(6, 13)
    with pytest.raises(ProofLengthError):
        root_from_consistency_proof(6, 13, [*consistency, consistency[0]], tree.root(6))
    with pytest.raises(ProofLengthError):
        verify_consistency(13, 13, consistency, tree.root(), tree.root())


def test_a_proof_hash_of_the_wrong_length_is_named() -> None:
    tree = MerkleTree(LEAVES)
    proof = tree.inclusion_proof(6, 13)
    proof[1] = proof[1][:31]
    with pytest.raises(HashSizeError, match="proof hash 1"):
        verify_inclusion(tree.leaf_hash(6), 6, 13, proof, tree.root())


def test_a_mismatch_says_which_root_the_proof_missed() -> None:
    tree = MerkleTree(LEAVES)
    proof = tree.consistency_proof(6, 13)
    with pytest.raises(RootMismatch) as first:
        verify_consistency(6, 13, proof, tree.root(5), tree.root())
    assert first.value.which == "first tree's"
    with pytest.raises(RootMismatch) as second:
        verify_consistency(6, 13, proof, tree.root(6), tree.root(12))
    assert (second.value.which, second.value.calculated) == ("second tree's", tree.root())
    with pytest.raises(RootMismatch):
        verify_inclusion(tree.leaf_hash(6), 6, 13, tree.inclusion_proof(6, 13), tree.root(12))


def test_a_consistency_proof_from_the_empty_tree_is_refused() -> None:
    with pytest.raises(InvalidSizes, match="empty tree"):
        verify_consistency(0, 3, [], EMPTY_ROOT, MerkleTree(LEAVES[:3]).root())
