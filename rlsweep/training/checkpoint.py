"""Atomic checkpoints: write a temporary file, fsync it, rename it over the old one, fsync the directory.

A crash (or a full disk) while writing leaves the previous checkpoint intact: the rename is the only moment
the checkpoint changes, and it is atomic on POSIX filesystems, NFS and Lustre included. The checkpoint before
the newest is kept as ``checkpoint.prev.pt`` (a hard link, so at every moment ``checkpoint.pt`` is the newest
complete one): if the newest turns out unreadable, ``resume=previous`` resumes from that one instead.

Snapshots (``budget.keep_checkpoints`` = K > 0): every K-th checkpoint interval, i.e. at the iterations that are
multiples of K x ``budget.checkpoint_every``, and at the run's last iteration, the checkpoint is also kept as
``checkpoints/step-<global_step>.pt`` for evaluating the learning curve afterwards (``rlsweep eval --all-steps``).
A snapshot is a hard link to the same file as ``checkpoint.pt`` (no second write, no extra disk until the next
checkpoint replaces ``checkpoint.pt``), put into place before ``checkpoint.pt`` itself, so a checkpoint that is
due a snapshot never exists without it. Which iterations get one depends on the iteration alone, so a resumed
run writes the same snapshots as an uninterrupted one (none twice, none lost). Snapshots of steps beyond the
checkpoint being written belong to progress that was thrown away (a crash between the snapshot's rename and
``checkpoint.pt``'s, ``resume=previous``): they are set aside in ``checkpoints/discarded/`` (nothing is deleted),
and the step's snapshot is written again when the run gets there.

This module owns the file names and formats of checkpoints; :func:`read_checkpoint` is the one reader (data
only), shared by the resume path and by ``rlsweep eval``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from rlsweep.rundir.record import CHECKPOINT_NAME, PREVIOUS_NAME

__all__ = [
    "CHECKPOINT_NAME",
    "PREVIOUS_NAME",
    "SNAPSHOT_DIR",
    "CheckpointError",
    "UnreadableCheckpoint",
    "list_snapshots",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "snapshot_due",
    "snapshot_path",
]

SNAPSHOT_DIR = "checkpoints"  # <run_dir>/checkpoints/step-<global_step>.pt (budget.keep_checkpoints)
_SNAPSHOT_RE = re.compile(r"^step-(\d+)\.pt$")


def snapshot_path(run_dir: Path, global_step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"step-{int(global_step)}.pt"


def snapshot_due(iteration: int, iterations: int, checkpoint_every: int, keep_checkpoints: int) -> bool:
    """Whether the checkpoint of ``iteration`` (of ``iterations`` in the budget) is also kept as a snapshot.

    Every ``keep_checkpoints``-th checkpoint interval (iterations that are multiples of ``keep_checkpoints *
    checkpoint_every``) and the last iteration, so the curve ends at the trained agent; 0 keeps none. A function
    of the iteration only: an interrupted and resumed run snapshots the same iterations as an uninterrupted one.
    """
    if keep_checkpoints <= 0:
        return False
    return iteration % (keep_checkpoints * checkpoint_every) == 0 or iteration == iterations


def list_snapshots(run_dir: Path) -> dict[int, Path]:
    """The run's snapshots by global step, in step order (empty without ``checkpoints/``)."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return {}
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := _SNAPSHOT_RE.match(p.name)) and p.is_file()}
    return dict(sorted(found.items()))


def save_checkpoint(state: dict[str, Any], run_dir: Path, snapshot: bool = False) -> Path:
    """Write ``state`` as ``run_dir/checkpoint.pt`` atomically; with ``snapshot`` also keep it as
    ``checkpoints/step-<state["global_step"]>.pt`` (see the module docstring for the order and why)."""
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
        if snapshot:
            _link_snapshot(tmp, snapshot_path(run_dir, int(state["global_step"])))
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
    if "global_step" in state:
        _set_aside_later_snapshots(run_dir, int(state["global_step"]))
    return path


def _link_snapshot(source: Path, target: Path) -> None:
    """``target`` := ``source``'s file, by a hard link renamed into place (a same-step snapshot is replaced)."""
    target.parent.mkdir(exist_ok=True)
    link = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.link(source, link)
    os.replace(link, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _set_aside_later_snapshots(run_dir: Path, global_step: int) -> None:
    """Snapshots past the step just checkpointed are of thrown-away progress: moved to ``checkpoints/discarded/``
    (nothing is deleted), so ``rlsweep eval --all-steps`` sees one timeline."""
    later = [p for step, p in list_snapshots(run_dir).items() if step > global_step]
    if not later:
        return
    where = Path(run_dir) / SNAPSHOT_DIR / "discarded" / time.strftime("%Y%m%d-%H%M%S")
    where.mkdir(parents=True, exist_ok=True)
    for p in later:
        os.replace(p, where / p.name)


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
    try:
        return read_checkpoint(path, device)
    except UnreadableCheckpoint as e:
        previous = path.with_name(PREVIOUS_NAME)
        choices = "resume=previous resumes from the one before it, " if previous.exists() else ""
        raise UnreadableCheckpoint(
            f"{e}; rerun with {choices}resume=restart to start this run over (its files are kept in discarded/)"
        ) from None


def read_checkpoint(path: Path, device: torch.device | str = "cpu", mmap: bool = False) -> dict[str, Any]:
    """One checkpoint file as data; ``mmap`` maps its tensors instead of reading them (a reader that needs only
    the policy does not read the optimiser's and the motivation's). Raises :class:`UnreadableCheckpoint`."""
    # weights_only: a checkpoint is data (tensors, numbers, strings), never code; a crafted pickle cannot run.
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except Exception as e:  # a truncated or foreign file: torch raises zip, pickle or unpickler errors
        raise UnreadableCheckpoint(
            f"checkpoint {path} cannot be read ({str(e).strip().splitlines()[0][:160]})"
        ) from None
    return state


class CheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be resumed; the message says which file and what to do."""


class UnreadableCheckpoint(CheckpointError):
    """The newest checkpoint cannot be read (truncated, foreign, damaged): ``resume=previous`` is for this."""
