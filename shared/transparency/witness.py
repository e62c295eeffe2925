"""What a C2SP tlog-witness (c2sp.org/tlog-witness) decides about a checkpoint it is shown.

A witness holds, per log, the latest checkpoint it accepted. Shown a new signed checkpoint and
a consistency proof from the size it holds, it accepts (and stores, and may cosign) only a
checkpoint signed by the log's key that extends what it holds; anything else is refused with
the status tlog-witness gives `add-checkpoint`:

- 400 `malformed`: not a signed checkpoint, or an old size past the checkpoint's size;
- 404 `unknown_log`: no trusted key is named after the origin;
- 403 `bad_signature`: a trusted key's signature fails, or none is there;
- 409 `conflict`: the old size is not the size held (in pull mode, where the witness supplies
  the old size itself: the checkpoint is smaller than the one held);
- 422 `inconsistent`: the proof does not join the held checkpoint to the new one (a fork when
  the sizes are equal and the roots differ), a proof from size 0, or a size-0 checkpoint
  whose root is not the empty tree's.

A signed checkpoint refused as inconsistent, and one whose signature fails, are evidence:
`witness_store` keeps them beside the checkpoint held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.transparency.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from shared.transparency.encoding import b64decode, b64encode, decode_decimal
from shared.transparency.merkle import EMPTY_ROOT, ProofError, verify_consistency
from shared.transparency.note import (
    NoteError,
    Signer,
    Verifiers,
    open_note,
    parse_note,
    sign_note,
)

__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "Decision",
    "MalformedRequest",
    "Verdict",
    "conflict_body",
    "decide",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "presented_origin",
]

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    UNKNOWN_LOG = "unknown_log"
    BAD_SIGNATURE = "bad_signature"
    CONFLICT = "conflict"
    INCONSISTENT = "inconsistent"


_STATUS = {
    Verdict.ACCEPTED: 200,
    Verdict.MALFORMED: 400,
    Verdict.UNKNOWN_LOG: 404,
    Verdict.BAD_SIGNATURE: 403,
    Verdict.CONFLICT: 409,
    Verdict.INCONSISTENT: 422,
}


@dataclass(frozen=True)
class Decision:
    """A verdict and why; on acceptance, the note to store and the cosignature lines, if any."""

    verdict: Verdict
    reason: str
    origin: str | None = None
    checkpoint: Checkpoint | None = None  # the one shown, once the log's signature verified
    held_size: int = 0
    note: str = ""
    cosignature: str = ""

    @property
    def status(self) -> int:
        """The HTTP status tlog-witness's `add-checkpoint` answers with."""
        return _STATUS[self.verdict]

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def is_evidence(self) -> bool:
        """Whether the notes shown and held are worth keeping: a bad signature or a fork."""
        return self.verdict in (Verdict.BAD_SIGNATURE, Verdict.INCONSISTENT)


def presented_origin(note: str | bytes) -> str | None:
    """The origin a note claims, unverified; None when it is no checkpoint."""
    try:
        return parse_checkpoint(parse_note(note).text).origin
    except (NoteError, CheckpointError):
        return None


def decide(
    held: Checkpoint | None,
    note: str | bytes,
    proof: Sequence[bytes],
    verifiers: Verifiers,
    *,
    old_size: int | None = None,
    cosigner: Signer | None = None,
) -> Decision:
    """Whether to accept the checkpoint `note` over `held`, given `proof` from the old size.

    `old_size` is what an `add-checkpoint` request states; None means the witness fetched the
    proof itself from the size it holds (pull mode)."""
    try:
        checkpoint = parse_checkpoint(parse_note(note).text)
    except (NoteError, CheckpointError) as error:
        return Decision(Verdict.MALFORMED, f"not a signed checkpoint: {error}")
    origin = checkpoint.origin
    log_keys = Verifiers(key for key in verifiers if key.name == origin)
    if not len(log_keys):
        return Decision(Verdict.UNKNOWN_LOG, f"no trusted key for {origin}", origin)
    if held is not None and held.origin != origin:
        raise ValueError(f"the checkpoint held is of {held.origin}, not of {origin}")
    try:
        opened = open_note(note, log_keys)
    except NoteError as error:
        return Decision(Verdict.BAD_SIGNATURE, str(error), origin)
    held_size = held.size if held is not None else 0

    def refuse(verdict: Verdict, reason: str) -> Decision:
        return Decision(verdict, reason, origin, checkpoint, held_size)

    if old_size is None:
        if checkpoint.size < held_size:
            return refuse(Verdict.CONFLICT, f"size {checkpoint.size} is behind {held_size}")
        old_size = held_size
    elif old_size > checkpoint.size:
        return refuse(Verdict.MALFORMED, f"old size {old_size} is past size {checkpoint.size}")
    elif old_size != held_size:
        return refuse(Verdict.CONFLICT, f"old size {old_size} is not the size held, {held_size}")
    if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
        return refuse(Verdict.INCONSISTENT, "an empty tree's root is SHA-256 of nothing")
    if held is None or old_size == 0:
        if proof:
            return refuse(Verdict.INCONSISTENT, "a proof from the empty tree must be empty")
    else:
        try:
            verify_consistency(held.size, checkpoint.size, proof, held.root, checkpoint.root)
        except ProofError as error:
            if held.size == checkpoint.size and held.root != checkpoint.root:
                reason = f"a fork: two roots for size {held.size}"
            else:
                reason = f"no consistency from size {held.size} to {checkpoint.size}: {error}"
            return refuse(Verdict.INCONSISTENT, reason)
    text = note if isinstance(note, str) else note.decode("utf-8")
    cosignature = ""
    if cosigner is not None:
        text = sign_note(opened.text, [cosigner], [*opened.verified, *opened.unverified])
        cosignature = text.splitlines(keepends=True)[-1]
    return Decision(
        Verdict.ACCEPTED,
        f"size {checkpoint.size} extends size {old_size}",
        origin,
        checkpoint,
        held_size,
        text,
        cosignature,
    )


class MalformedRequest(ValueError):
    """An `add-checkpoint` body that is not one (400)."""


@dataclass(frozen=True)
class AddCheckpoint:
    """An `add-checkpoint` request: the old size, the consistency proof and the note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def parse_add_checkpoint(body: str | bytes) -> AddCheckpoint:
    """`old <size>`, up to 63 base64 proof lines, a blank line, then the checkpoint."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedRequest("not UTF-8") from error
    head, separator, note = body.partition("\n\n")
    if not separator:
        raise MalformedRequest("no blank line before the checkpoint")
    first, *proof_lines = head.split("\n")
    if not first.startswith("old "):
        raise MalformedRequest("the first line is `old <size>`")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedRequest(f"more than {MAX_PROOF_LINES} proof lines")
    try:
        old_size = decode_decimal(first.removeprefix("old "))
        proof = tuple(b64decode(line) for line in proof_lines)
    except ValueError as error:
        raise MalformedRequest(str(error)) from error
    return AddCheckpoint(old_size, proof, note)


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> str:
    """An `add-checkpoint` request body."""
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} proof lines")
    lines = [f"old {old_size}", *(b64encode(value) for value in proof)]
    return "".join(f"{line}\n" for line in lines) + "\n" + note


def conflict_body(held_size: int) -> str:
    """The body of a 409 answer (content type `text/x.tlog.size`)."""
    return f"{held_size}\n"
