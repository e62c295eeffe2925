"""A witness's state on disk: per log, the checkpoint it holds and the evidence it kept.

    DIR/<log>/checkpoint                        the note last accepted, as accepted
    DIR/<log>/evidence/<n>-<verdict>/held       the note held when a checkpoint was refused
    DIR/<log>/evidence/<n>-<verdict>/presented  the note refused
    DIR/<log>/evidence/<n>-<verdict>/proof      its consistency proof, a base64 hash a line
    DIR/<log>/evidence/<n>-<verdict>/reason     the verdict and why
    DIR/<log>/lock                              locked while a checkpoint is checked and stored

`<log>` is the origin with every byte but `A-Za-z0-9_-` written `%XX` (`rapport%2Fintake`).
Checking and storing happen under the lock, so two witnesses sharing DIR cannot roll each
other back; a file is written to a temporary name, synced, renamed over and its directory
synced, so a crash leaves the old checkpoint or the new one, never part of one.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

from shared.transparency.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from shared.transparency.encoding import b64encode
from shared.transparency.note import NoteError, Signer, Verifiers
from shared.transparency.witness import Decision, decide, presented_origin

__all__ = [
    "Submitted",
    "WitnessStateError",
    "WitnessStore",
]

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_NAME = 200


class WitnessStateError(RuntimeError):
    """What the witness holds cannot be trusted (its checkpoint no longer verifies)."""


class Submitted(NamedTuple):
    """A decision, and where its evidence was kept when it was refused as evidence."""

    decision: Decision
    evidence: Path | None


def _directory_name(origin: str) -> str:
    name = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in origin.encode("utf-8"))
    if len(name) > _MAX_NAME:
        raise WitnessStateError(f"origin {origin[:40]!r}... is too long to name a directory")
    return name


def _sync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


class WitnessStore:
    """The directory a witness keeps its checkpoints and evidence in."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def log_directory(self, origin: str) -> Path:
        return self.directory / _directory_name(origin)

    def held_note(self, origin: str) -> str | None:
        """The note last accepted for `origin`, as stored."""
        try:
            return (self.log_directory(origin) / "checkpoint").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def held(self, origin: str, verifiers: Verifiers) -> Checkpoint | None:
        """The checkpoint held for `origin`, verified again, or WitnessStateError."""
        return self._verified(origin, self.held_note(origin), verifiers)

    def _verified(self, origin: str, note: str | None, verifiers: Verifiers) -> Checkpoint | None:
        if note is None:
            return None
        try:
            checkpoint = open_checkpoint(note, verifiers)
        except (NoteError, CheckpointError) as error:
            raise WitnessStateError(f"the checkpoint held for {origin} fails: {error}") from error
        if checkpoint.origin != origin:
            raise WitnessStateError(f"the checkpoint held for {origin} is of {checkpoint.origin}")
        return checkpoint

    def evidence(self, origin: str) -> list[Path]:
        """The evidence kept for `origin`, oldest first."""
        root = self.log_directory(origin) / "evidence"
        if not root.is_dir():
            return []
        return sorted(path for path in root.iterdir() if not path.name.startswith("."))

    def submit(
        self,
        note: str,
        proof: Sequence[bytes],
        verifiers: Verifiers,
        *,
        old_size: int | None = None,
        cosigner: Signer | None = None,
    ) -> Submitted:
        """Decides on `note` against the checkpoint held, and stores it or its evidence."""
        origin = presented_origin(note)
        if origin is None or origin not in verifiers.names():
            return Submitted(decide(None, note, proof, verifiers, old_size=old_size), None)
        directory = self.log_directory(origin)
        with self._locked(directory):
            held_note = self.held_note(origin)
            held = self._verified(origin, held_note, verifiers)
            decision = decide(held, note, proof, verifiers, old_size=old_size, cosigner=cosigner)
            if decision.accepted:
                _write_atomic(directory / "checkpoint", decision.note)
            elif decision.is_evidence:
                return Submitted(decision, self._keep(directory, decision, held_note, note, proof))
            return Submitted(decision, None)

    @contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _sync_directory(directory.parent)
        with open(directory / "lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _keep(
        self,
        directory: Path,
        decision: Decision,
        held_note: str | None,
        note: str,
        proof: Sequence[bytes],
    ) -> Path:
        root = directory / "evidence"
        root.mkdir(exist_ok=True)
        numbers = [int(path.name[:6]) for path in root.iterdir() if path.name[:6].isdigit()]
        final = root / f"{max(numbers, default=0) + 1:06d}-{decision.verdict}"
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
        files = {
            "presented": note,
            "proof": "".join(f"{b64encode(value)}\n" for value in proof),
            "reason": f"{decision.verdict}: {decision.reason}\n",
        }
        if held_note is not None:
            files["held"] = held_note
        for name, text in files.items():
            _write_synced(staging / name, text)
        _sync_directory(staging)
        os.rename(staging, final)
        _sync_directory(root)
        return final
