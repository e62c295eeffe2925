"""Development secrets, generated once and kept in the data directory."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from shared.security.crypto import generate_master_key

__all__ = [
    "DevSecrets",
    "dev_secrets",
    "master_key",
    "no_secrets",
    "secrets_file",
    "stored_jwt_secret",
]


@dataclass(frozen=True)
class DevSecrets:
    jwt_secret: str
    master_key: str


def dev_secrets(data_dir: Path) -> DevSecrets:
    """The environment's secrets if set, else those stored in `data_dir` (created on first use).

    The master key must outlive restarts: without it, stored personal data cannot be read.
    """
    path = secrets_file(data_dir)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    jwt_secret = os.environ.get("RAPPORT_JWT_SECRET") or stored.get("jwt_secret")
    master_key = os.environ.get("RAPPORT_MASTER_KEY") or stored.get("master_key")
    if not stored:
        data_dir.mkdir(parents=True, exist_ok=True)
        stored = {
            "jwt_secret": jwt_secret or secrets.token_urlsafe(32),
            "master_key": master_key or generate_master_key(),
        }
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    return DevSecrets(jwt_secret or stored["jwt_secret"], master_key or stored["master_key"])


def secrets_file(data_dir: Path) -> Path:
    """Where `rapport dev` keeps its secrets."""
    return data_dir / "secrets.json"


def master_key(data_dir: Path) -> str | None:
    """The master key from the environment or `rapport dev`'s secrets; never created here."""
    if key := os.environ.get("RAPPORT_MASTER_KEY"):
        return key
    if secrets_file(data_dir).exists():
        return dev_secrets(data_dir).master_key
    return None


def stored_jwt_secret(data_dir: Path) -> str | None:
    """The JWT secret of `rapport dev` (None before it first ran); never created here."""
    if not secrets_file(data_dir).exists():
        return None
    return dev_secrets(data_dir).jwt_secret


def no_secrets(data_dir: Path) -> str:
    """What to do when `data_dir` holds no secrets of `rapport dev` (run from another folder,
    most often: `rapport dev` keeps them in its own `--data-dir`, `.rapport` where it runs)."""
    return (
        f"no secrets of `rapport dev` in {secrets_file(data_dir.expanduser().resolve())}:"
        " pass --data-dir with the folder `rapport dev` uses (its --data-dir, by default"
        " .rapport in the folder it runs in), or set RAPPORT_JWT_SECRET"
    )
