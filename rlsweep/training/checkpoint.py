"""Atomic checkpoints: write a temporary file, fsync it, rename it over the old one, fsync the directory.

A crash (or a full disk) while writing leaves the previous checkpoint intact: the rename is the only moment
the checkpoint changes, and it is atomic on POSIX filesystems, NFS and Lustre included.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / CHECKPOINT_NAME
    tmp = run_dir / f".{CHECKPOINT_NAME}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # never leave half a checkpoint behind; the old one is untouched
        if isinstance(e, Exception) and not isinstance(e, OSError):
            # A full disk surfaces from torch's zip writer as a RuntimeError: report it as the I/O error it is.
            raise OSError(f"checkpoint not written to {path} ({e}); the previous checkpoint is kept") from e
        raise
    dir_fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    # weights_only: a checkpoint is data (tensors, numbers, strings), never code; a crafted pickle cannot run.
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated or foreign file: torch raises zip, pickle or unpickler errors
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({str(e).strip().splitlines()[0][:200]}); move it away to start "
            "this run over, or put back a copy"
        ) from None
    return state


class CheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be loaded; the message says which file and what to do."""
