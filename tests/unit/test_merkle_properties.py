"""Properties of the Merkle tree over random logs, against RFC 9162's definitions written out
literally here (MTH, PATH and SUBPROOF by recursion), and the corruptions transparency-dev's
verify_test.go applies to every good proof."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.transparency.merkle import (
    EMPTY_ROOT,
    CompactTree,
    MerkleTree,
    ProofError,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    range_nodes,
    verify_consistency,
    verify_inclusion,
)

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

logs = st.lists(st.binary(max_size=40), max_size=48)
sized_logs = st.lists(st.binary(max_size=40), min_size=1, max_size=48)
# Two equal leaves have equal proofs: a proof for one index also proves the other.
distinct_logs = st.lists(st.binary(max_size=40), min_size=1, max_size=48, unique=True)


def split(n: int) -> int:
    """The largest power of two smaller than `n` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, word for word."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = split(len(leaves))
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1, word for word."""
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1, word for word."""
    if m == len(leaves):
        return [] if whole else [mth(leaves)]
    k = split(len(leaves))
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def flipped(value: bytes, bit: int) -> bytes:
    return bytes([value[0] ^ (1 << bit), *value[1:]])


def bad_inclusions(
    hashed: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> Iterator[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """transparency-dev's corruptInclusionProof."""
    yield "index - 1", (hashed, index - 1, size, proof, root)
    yield "index + 1", (hashed, index + 1, size, proof, root)
    yield "index ^ 2", (hashed, index ^ 2, size, proof, root)
    yield "size * 2", (hashed, index, size * 2, proof, root)
    yield "size // 2", (hashed, index, size // 2, proof, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, proof, root)
    yield "another leaf", (SOME_HASH, index, size, proof, root)
    yield "empty root", (hashed, index, size, proof, EMPTY_ROOT)
    yield "random root", (hashed, index, size, proof, SOME_HASH)
    yield "trailing garbage", (hashed, index, size, [*proof, b""], root)
    yield "trailing root", (hashed, index, size, [*proof, root], root)
    yield "preceding garbage", (hashed, index, size, [b"", *proof], root)
    yield "preceding root", (hashed, index, size, [root, *proof], root)
    for position in range(len(proof)):
        wrong = [*proof]
        wrong[position] = flipped(wrong[position], 3)
        yield f"proof[{position}] bit 3", (hashed, index, size, wrong, root)
    if proof:
        yield "removed component", (hashed, index, size, proof[:-1], root)
    if len(proof) > 1:
        yield "inserted component", (hashed, index, size, [proof[0], SOME_HASH, *proof[1:]], root)


def bad_consistencies(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> Iterator[tuple[str, tuple[int, int, list[bytes], bytes, bytes]]]:
    """transparency-dev's corruptConsistencyProof."""
    yield "size1 - 1", (size1 - 1, size2, proof, root1, root2)
    yield "size1 + 1", (size1 + 1, size2, proof, root1, root2)
    yield "size1 ^ 2", (size1 ^ 2, size2, proof, root1, root2)
    yield "size2 * 2", (size1, size2 * 2, proof, root1, root2)
    yield "size2 // 2", (size1, size2 // 2, proof, root1, root2)
    yield "wrong root1", (size1, size2, proof, b"WrongRoot", root2)
    yield "wrong root2", (size1, size2, proof, root1, b"WrongRoot")
    yield "swapped roots", (size1, size2, proof, root2, root1)
    yield "empty proof", (size1, size2, [], root1, root2)
    yield "trailing garbage", (size1, size2, [*proof, b""], root1, root2)
    yield "trailing root1", (size1, size2, [*proof, root1], root1, root2)
    yield "trailing root2", (size1, size2, [*proof, root2], root1, root2)
    yield "preceding garbage", (size1, size2, [b"", *proof], root1, root2)
    yield "preceding root1", (size1, size2, [root1, *proof], root1, root2)
    yield "preceding root2", (size1, size2, [root2, *proof], root1, root2)
    yield "preceding proof[0]", (size1, size2, [proof[0], *proof], root1, root2)
    yield "truncated proof", (size1, size2, proof[:-1], root1, root2)
    for position in range(len(proof)):
        wrong = [*proof]
        wrong[position] = flipped(wrong[position], 4)
        yield f"proof[{position}] bit 4", (size1, size2, wrong, root1, root2)


def fails(check: Callable[..., None], *arguments: Any) -> bool:
    try:
        check(*arguments)
    except ProofError:
        return True
    return False


@given(logs)
def test_the_incremental_root_is_the_recursive_definition_at_every_size(
    leaves: list[bytes],
) -> None:
    compact = CompactTree()
    tree = MerkleTree()
    for size, leaf in enumerate(leaves, start=1):
        compact.append(leaf)
        tree.append(leaf)
        assert compact.root() == mth(leaves[:size])
    assert [tree.root(size) for size in range(len(leaves) + 1)] == [
        mth(leaves[:size]) for size in range(len(leaves) + 1)
    ]


@given(logs, st.data())
def test_a_saved_tree_resumes_where_it_stopped(leaves: list[bytes], data: st.DataObject) -> None:
    stop = data.draw(st.integers(0, len(leaves)))
    before = CompactTree()
    for leaf in leaves[:stop]:
        before.append(leaf)
    resumed = CompactTree.from_state(before.state())
    for leaf in leaves[stop:]:
        resumed.append(leaf)
    assert resumed == MerkleTree(leaves).compact()
    assert resumed.root() == mth(leaves)


@given(logs)
def test_the_subtrees_an_append_completes_are_the_trees_perfect_subtrees(
    leaves: list[bytes],
) -> None:
    compact = CompactTree()
    completed = [node for leaf in leaves for node in compact.append(leaf)]
    for node in completed:
        assert node.hash == mth(leaves[node.index << node.level : (node.index + 1) << node.level])
    assert len(completed) == len({(node.level, node.index) for node in completed})
    assert len(completed) == max(2 * len(leaves) - len(leaves).bit_count(), 0)


@given(sized_logs)
def test_every_inclusion_proof_is_rfc_9162s_path_and_verifies(leaves: list[bytes]) -> None:
    tree = MerkleTree(leaves)
    for size in range(1, len(leaves) + 1):
        root = mth(leaves[:size])
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == path(index, leaves[:size])
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)


@given(sized_logs)
def test_every_consistency_proof_is_rfc_9162s_and_verifies(leaves: list[bytes]) -> None:
    tree = MerkleTree(leaves)
    for size2 in range(1, len(leaves) + 1):
        for size1 in range(1, size2 + 1):
            proof = tree.consistency_proof(size1, size2)
            assert proof == subproof(size1, leaves[:size2], True)
            verify_consistency(size1, size2, proof, mth(leaves[:size1]), mth(leaves[:size2]))


@given(distinct_logs, st.data())
def test_no_corruption_of_an_inclusion_proof_verifies(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    proof = MerkleTree(leaves).inclusion_proof(index, size)
    good = (leaf_hash(leaves[index]), index, size, proof, mth(leaves[:size]))
    assert not fails(verify_inclusion, *good)
    verified = [name for name, bad in bad_inclusions(*good) if not fails(verify_inclusion, *bad)]
    assert verified == []


@given(distinct_logs.filter(lambda leaves: len(leaves) > 1), st.data())
def test_no_corruption_of_a_consistency_proof_verifies(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size2 = data.draw(st.integers(2, len(leaves)))
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = MerkleTree(leaves).consistency_proof(size1, size2)
    good = (size1, size2, proof, mth(leaves[:size1]), mth(leaves[:size2]))
    assert not fails(verify_consistency, *good)
    verified = [
        name for name, bad in bad_consistencies(*good) if not fails(verify_consistency, *bad)
    ]
    assert verified == []


@given(sized_logs, st.data())
def test_a_rewritten_leaf_breaks_every_proof_against_the_root_signed_before(
    leaves: list[bytes], data: st.DataObject
) -> None:
    changed = data.draw(st.integers(0, len(leaves) - 1))
    forged = [*leaves]
    forged[changed] = leaves[changed] + b"!"
    honest, rewritten = MerkleTree(leaves), MerkleTree(forged)
    size2 = len(leaves)
    for size1 in range(1, size2 + 1):
        proof = rewritten.consistency_proof(size1, size2)
        joined = not fails(verify_consistency, size1, size2, proof, honest.root(size1), mth(forged))
        assert joined == (changed >= size1)
    for index in range(size2):
        proof = rewritten.inclusion_proof(index, size2)
        leaf = rewritten.leaf_hash(index)
        assert fails(verify_inclusion, leaf, index, size2, proof, honest.root())


@given(st.integers(1, 5000), st.data())
def test_a_proof_asks_for_few_aligned_ranges_at_most_one_not_a_perfect_subtree(
    size2: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, size2 - 1))
    size1 = data.draw(st.integers(1, size2))
    for ranges in (inclusion_proof_ranges(index, size2), consistency_proof_ranges(size1, size2)):
        assert len(ranges) <= 2 * size2.bit_length()
        nodes = [range_nodes(start, end) for start, end in ranges]
        assert sum(len(parts) > 1 for parts in nodes) <= 1
        assert sum(len(parts) for parts in nodes) <= 3 * size2.bit_length()


@given(sized_logs, st.data())
def test_proofs_from_any_source_of_range_roots_are_the_same(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    asked: list[tuple[int, int]] = []

    def from_leaves(start: int, end: int) -> bytes:
        asked.append((start, end))
        return mth(leaves[start:end])

    tree = MerkleTree(leaves)
    assert inclusion_proof(index, size, from_leaves) == tree.inclusion_proof(index, size)
    assert consistency_proof(index + 1, size, from_leaves) == tree.consistency_proof(
        index + 1, size
    )
    assert all(start % (1 << (end - start - 1).bit_length()) == 0 for start, end in asked)
