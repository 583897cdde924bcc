"""One checkpoint per epoch for managed spot: written atomically, resumed when present."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from training.errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def checkpoint_path(checkpoint_dir: Path) -> Path:
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(checkpoint_dir: Path, state: dict) -> Path:
    """Write to a temporary file and rename: a kill mid-write leaves the previous checkpoint intact."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(checkpoint_dir)
    handle, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".partial", dir=checkpoint_dir)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(checkpoint_dir: Path, fingerprint: dict) -> dict | None:
    """The saved state, or None when there is none; refuses one written by a different run."""
    path = checkpoint_path(checkpoint_dir)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file must not look like a bug in the trainer
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    saved = state.get("fingerprint", {})
    if saved != fingerprint:
        changed = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        raise CheckpointError(
            f"checkpoint {path} belongs to a different run (changed: {', '.join(changed)}); "
            "remove it or use another checkpoint directory"
        )
    return state
