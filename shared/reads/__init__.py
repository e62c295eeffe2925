"""The read side: keeping projections caught up, rebuilding them, auditing a log."""

from shared.reads.audit import (
    BadEvent,
    ChainVerifier,
    ProjectionDigest,
    ReplayResult,
    VerifyResult,
    digests_of,
    live_digests,
    replay,
    verify_events,
)
from shared.reads.folding import (
    Unapplied,
    apply_batch,
    apply_round,
    reapply,
)
from shared.reads.rebuild import (
    PassResult,
    fold_pass,
    plan_passes,
    rebuild_into,
)
from shared.reads.runner import (
    ProjectionRunner,
    Unit,
)

__all__ = [
    "BadEvent",
    "ChainVerifier",
    "PassResult",
    "ProjectionDigest",
    "ProjectionRunner",
    "ReplayResult",
    "Unapplied",
    "Unit",
    "VerifyResult",
    "apply_batch",
    "apply_round",
    "digests_of",
    "fold_pass",
    "live_digests",
    "plan_passes",
    "reapply",
    "rebuild_into",
    "replay",
    "verify_events",
]
