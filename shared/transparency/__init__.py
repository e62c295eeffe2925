"""Commitments an outsider can check: RFC 9162 Merkle trees, C2SP signed notes and checkpoints."""

from shared.transparency.merkle import (
    EMPTY_ROOT,
    CompactTree,
    MerkleTree,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "CompactTree",
    "MerkleTree",
    "verify_consistency",
    "verify_inclusion",
]
