"""Atomic checkpoints: write a temporary file, fsync it, rename it over the old one, fsync the directory.

A crash (or a full disk) while writing leaves the previous checkpoint intact: the rename is the only moment
the checkpoint changes, and it is atomic on POSIX filesystems, NFS and Lustre included. The checkpoint before
the newest is kept as ``checkpoint.prev.pt`` (a hard link, so at every moment ``checkpoint.pt`` is the newest
complete one): if the newest turns out unreadable, ``resume=previous`` resumes from that one instead.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from rlsweep.record import CHECKPOINT_NAME, PREVIOUS_NAME

__all__ = [
    "CHECKPOINT_NAME",
    "PREVIOUS_NAME",
    "CheckpointError",
    "UnreadableCheckpoint",
    "load_checkpoint",
    "save_checkpoint",
]


def save_checkpoint(state: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / CHECKPOINT_NAME
    tmp = run_dir / f".{CHECKPOINT_NAME}.tmp"
    # Serialised in memory first: a full disk then fails in a plain file write, as an OSError that says so
    # (torch's zip writer would report it as an "unexpected pos" RuntimeError).
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            _keep_previous(path)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # never leave half a checkpoint behind; the old one is untouched
        raise OSError(e.errno, f"checkpoint not written to {path} ({e.strerror}); the previous one is kept") from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _keep_previous(path: Path) -> None:
    """``checkpoint.prev.pt`` := the current checkpoint, by a link renamed into place (never a moment without)."""
    link = path.with_name(f".{PREVIOUS_NAME}.tmp")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.link(path, link)
    os.replace(link, path.with_name(PREVIOUS_NAME))


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    # weights_only: a checkpoint is data (tensors, numbers, strings), never code; a crafted pickle cannot run.
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated or foreign file: torch raises zip, pickle or unpickler errors
        previous = path.with_name(PREVIOUS_NAME)
        choices = "resume=previous resumes from the one before it, " if previous.exists() else ""
        raise UnreadableCheckpoint(
            f"checkpoint {path} cannot be read ({str(e).strip().splitlines()[0][:160]}); rerun with {choices}"
            "resume=restart to start this run over (its files are kept in discarded/)"
        ) from None
    return state


class CheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be resumed; the message says which file and what to do."""


class UnreadableCheckpoint(CheckpointError):
    """The newest checkpoint cannot be read (truncated, foreign, damaged): ``resume=previous`` is for this."""
