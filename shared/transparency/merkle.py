"""RFC 9162 section 2.1 Merkle trees over SHA-256: an incremental tree, proofs and their checks.

A leaf hashes as SHA-256(0x00 || leaf), a node as SHA-256(0x01 || left || right), the empty
tree as SHA-256 of nothing. Leaves may be any bytes (Rapport's are the 32 bytes of an event's
hash); everything past `leaf_hash` works on 32-byte hashes.

Proofs are built from the roots of sub-ranges of the log (RFC 9162's MTH of `D[start:end]`),
so the caller decides where hashes come from. Every range a proof asks for is *aligned*:
`start` is a multiple of the smallest power of two at least `end - start`. Such a range is a
perfect subtree, or the left part of one, and its root folds from at most log2(n) perfect
subtrees (`range_nodes`, `range_root`). `CompactTree.append` hands out each perfect subtree
as it completes, so a service that stores those nodes answers any proof with O(log n) lookups:
`inclusion_proof_ranges` / `consistency_proof_ranges` name the O(log n) ranges, at most one of
which is not a perfect subtree.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 as transparency-dev/merkle's
`proof/verify.go` writes them, with an error type for each way a proof can fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactTree",
    "HashRange",
    "HashSizeError",
    "IndexOutOfRange",
    "InvalidSizes",
    "MerkleTree",
    "Node",
    "NodeLookup",
    "ProofError",
    "ProofLengthError",
    "RootMismatch",
    "TreeStateError",
    "consistency_proof",
    "consistency_proof_ranges",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "range_root",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

HashRange: TypeAlias = Callable[[int, int], bytes]
"""The root of leaves `[start, end)`; proofs only ever ask for aligned ranges."""

NodeLookup: TypeAlias = Callable[[int, int], bytes]
"""The hash of the perfect subtree `(level, index)`, over leaves `[index << level, ...)`."""


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree: leaves `[index << level, (index + 1) << level)` and their root."""

    level: int
    index: int
    hash: bytes


class ProofError(ValueError):
    """A proof, or a request for one, that does not hold."""


class IndexOutOfRange(ProofError):
    """A leaf index outside `[0, size)`."""

    def __init__(self, index: int, size: int) -> None:
        super().__init__(f"leaf index {index} is not in a tree of size {size}")
        self.index = index
        self.size = size


class InvalidSizes(ProofError):
    """Tree sizes no consistency proof joins (it needs `0 < first <= second`), or past a tree."""


class ProofLengthError(ProofError):
    """A proof with more or fewer hashes than its sizes call for."""

    def __init__(self, got: int, want: int) -> None:
        super().__init__(f"the proof has {got} hashes, the sizes call for {want}")
        self.got = got
        self.want = want


class HashSizeError(ProofError):
    """A leaf hash or proof hash that is not 32 bytes."""


class RootMismatch(ProofError):
    """A proof that leads to another root than the one given."""

    def __init__(self, expected: bytes, calculated: bytes, which: str = "tree") -> None:
        super().__init__(
            f"the proof leads to {calculated.hex()}, not to the {which} root {expected.hex()}"
        )
        self.expected = expected
        self.calculated = calculated
        self.which = which


class TreeStateError(ValueError):
    """A saved compact tree that cannot be a tree's state."""


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise HashSizeError(f"{what} has {len(value)} bytes, not {HASH_SIZE}")


def _trailing_zeros(value: int) -> int:
    return (value & -value).bit_length() - 1


def _largest_power_of_two_below(value: int) -> int:
    return 1 << ((value - 1).bit_length() - 1)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


# Proof generation (RFC 9162 2.1.3.1 and 2.1.4.1), as the ranges whose roots make the proof.


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose roots are PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    ranges.reverse()
    return ranges


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The ranges whose roots are PROOF(size1, D[0:size2]), lowest first."""
    if not 0 < size1 <= size2:
        raise InvalidSizes(f"no consistency proof joins sizes {size1} and {size2}")
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, size2, True
    while size1 - start != end - start:
        split = start + _largest_power_of_two_below(end - start)
        if size1 <= split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start, whole = split, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, hash_range: HashRange) -> list[bytes]:
    """RFC 9162's inclusion proof of leaf `index` in the tree of `size` leaves."""
    return [hash_range(start, end) for start, end in inclusion_proof_ranges(index, size)]


def consistency_proof(size1: int, size2: int, hash_range: HashRange) -> list[bytes]:
    """RFC 9162's consistency proof from the tree of `size1` leaves to that of `size2`."""
    return [hash_range(start, end) for start, end in consistency_proof_ranges(size1, size2)]


def range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The `(level, index)` of the perfect subtrees that make the aligned range, left first."""
    if not 0 <= start < end:
        raise InvalidSizes(f"[{start}, {end}) is not a range of leaves")
    if start % (1 << (end - start - 1).bit_length()):
        raise InvalidSizes(f"[{start}, {end}) is not an aligned range")
    nodes: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_root(start: int, end: int, node: NodeLookup) -> bytes:
    """The root of the aligned range `[start, end)` from its perfect subtrees' hashes."""
    return _fold_right([node(level, index) for level, index in range_nodes(start, end)])


# Verification (RFC 9162 2.1.3.2 and 2.1.4.2, in transparency-dev/merkle's formulation).


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """How many inner (below where the paths to `index` and `size - 1` meet) and border hashes."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        seed = node_hash(seed, sibling) if (index >> level) & 1 == 0 else node_hash(sibling, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` gives the leaf at `index` in a tree of `size` leaves."""
    if not 0 <= index < size:
        raise IndexOutOfRange(index, size)
    _check_hash(leaf_hash, "the leaf hash")
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofLengthError(len(proof), inner + border)
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}")
    return _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Returns when `proof` shows the leaf at `index` in the tree of `size` with `root`."""
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != root:
        raise RootMismatch(root, calculated)


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """The root of the tree of `size2` that `proof` extends the tree of `size1`, `root1` to.

    Raises RootMismatch when the proof does not lead back to `root1` itself."""
    if not 0 <= size1 <= size2:
        raise InvalidSizes(f"no consistency proof joins sizes {size1} and {size2}")
    if size1 == 0:
        raise InvalidSizes("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofLengthError(len(proof), 0)
        return root1
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = _trailing_zeros(size1)
    inner -= shift
    perfect = size1 == 1 << shift  # the first tree is a subtree of the second: its root is known
    want = inner + border + (0 if perfect else 1)
    if len(proof) != want:
        raise ProofLengthError(len(proof), want)
    for position, value in enumerate(proof):
        _check_hash(value, f"proof hash {position}")
    seed, path = (root1, proof) if perfect else (proof[0], proof[1:])
    mask = (size1 - 1) >> shift
    first = _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    if first != root1:
        raise RootMismatch(root1, first, "first tree's")
    return _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:])


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Returns when `proof` shows the tree of `size1`, `root1` is a prefix of `size2`, `root2`."""
    calculated = root_from_consistency_proof(size1, size2, proof, root1)
    if calculated != root2:
        raise RootMismatch(root2, calculated, "second tree's")


# The incremental tree.


class CompactTree:
    """The roots of the perfect subtrees that make a tree of `size` leaves, largest first.

    Appending costs O(1) hashes amortised (O(log n) at worst), the root O(log n); `state` and
    `from_state` save and restore it, so a log resumes without rereading its leaves."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise TreeStateError(f"a tree cannot have {size} leaves")
        if len(hashes) != size.bit_count():
            raise TreeStateError(
                f"a tree of {size} leaves has {size.bit_count()} subtrees, not {len(hashes)}"
            )
        for value in hashes:
            if len(value) != HASH_SIZE:
                raise TreeStateError(f"a subtree root of {len(value)} bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def subtrees(self) -> list[Node]:
        """The perfect subtrees this state holds, left first."""
        ids = range_nodes(0, self._size) if self._size else []
        return [
            Node(level, index, value)
            for (level, index), value in zip(ids, self._hashes, strict=True)
        ]

    def append(self, leaf: bytes) -> list[Node]:
        """Adds a leaf; returns the perfect subtrees it completes, the leaf's own first."""
        return self.append_hash(leaf_hash(leaf))

    def append_hash(self, hash_of_leaf: bytes) -> list[Node]:
        """Adds a leaf by its leaf hash; returns the perfect subtrees it completes."""
        if len(hash_of_leaf) != HASH_SIZE:
            raise HashSizeError(f"a leaf hash of {len(hash_of_leaf)} bytes")
        index, value, level = self._size, hash_of_leaf, 0
        completed = [Node(0, index, value)]
        while (index >> level) & 1:
            value = node_hash(self._hashes.pop(), value)
            level += 1
            completed.append(Node(level, index >> level, value))
        self._hashes.append(value)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """The tree's root hash."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> CompactTree:
        return CompactTree(self._size, self._hashes)

    def state(self) -> dict[str, object]:
        """`{"size": n, "hashes": [hex, ...]}`, for JSON."""
        return {"size": self._size, "hashes": [value.hex() for value in self._hashes]}

    @classmethod
    def from_state(cls, state: object) -> CompactTree:
        """The tree `state` saved, or TreeStateError."""
        if not isinstance(state, dict) or set(state) != {"size", "hashes"}:
            raise TreeStateError("a tree state is an object with size and hashes")
        size, hashes = state["size"], state["hashes"]
        if type(size) is not int or not isinstance(hashes, list):
            raise TreeStateError("a tree state's size is an integer, its hashes a list")
        if not all(isinstance(value, str) for value in hashes):
            raise TreeStateError("a tree state's hashes are hex text")
        try:
            decoded = [bytes.fromhex(value) for value in hashes]
        except ValueError as error:
            raise TreeStateError("a tree state's hashes are hex text") from error
        return cls(size, decoded)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactTree):
            return NotImplemented
        return (self._size, self._hashes) == (other._size, other._hashes)

    def __repr__(self) -> str:
        return f"CompactTree(size={self._size}, root={self.root().hex()})"


class MerkleTree:
    """A whole tree in memory: every perfect subtree's hash, 64 bytes a leaf all told.

    Roots at any earlier size and every proof cost O(log n) hashes; for a verifier that has
    every leaf anyway (`rapport audit verify`, an export of many inclusion proofs)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._compact = CompactTree()
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._compact.size

    def append(self, leaf: bytes) -> None:
        """Adds a leaf (its bytes; it is hashed here)."""
        self.append_hash(leaf_hash(leaf))

    def append_hash(self, hash_of_leaf: bytes) -> None:
        """Adds a leaf by its leaf hash."""
        for node in self._compact.append_hash(hash_of_leaf):
            if node.level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[node.level] += node.hash

    def leaf_hash(self, index: int) -> bytes:
        return self.node(0, index)

    def node(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree at `(level, index)`."""
        row = self._levels[level] if 0 <= level < len(self._levels) else b""
        if not 0 <= index < len(row) // HASH_SIZE:
            raise InvalidSizes(f"no complete subtree at level {level}, index {index}")
        return bytes(row[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def hash_range(self, start: int, end: int) -> bytes:
        """The root of the aligned range `[start, end)` of this tree."""
        if end > self.size:
            raise InvalidSizes(f"[{start}, {end}) goes past the tree's {self.size} leaves")
        return range_root(start, end, self.node)

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree's first `size` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise InvalidSizes(f"size {size} is not within the tree's {self.size} leaves")
        return self.hash_range(0, size) if size else EMPTY_ROOT

    def compact(self, size: int | None = None) -> CompactTree:
        """The compact tree of the first `size` leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise InvalidSizes(f"size {size} is not within the tree's {self.size} leaves")
        ids = range_nodes(0, size) if size else []
        return CompactTree(size, [self.node(level, index) for level, index in ids])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf `index` in the tree of `size` (default: all)."""
        size = self.size if size is None else size
        if size > self.size:
            raise InvalidSizes(f"size {size} is past the tree's {self.size} leaves")
        return inclusion_proof(index, size, self.hash_range)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from the tree of `size1` to that of `size2` (default: all)."""
        size2 = self.size if size2 is None else size2
        if size2 > self.size:
            raise InvalidSizes(f"size {size2} is past the tree's {self.size} leaves")
        return consistency_proof(size1, size2, self.hash_range)
