"""W&B's transaction log (``run-<id>.wandb`` in an ``offline-run-*`` directory), read back.

Why the product reads it: wandb-core writes a run's records to this file through a buffer that reaches the
disk when the run's stream closes, and ``run.finish()`` returns before that: it asks the W&B service to close
the stream and does not wait. A tracker that recorded "W&B holds step N" as soon as ``finish()`` returned
could be wrong for a moment, and wrong for good if the job is killed in that moment (the service dies with
it). So the tracker waits until the file holds the run's exit record (``wait_for_exit``) before it says so.
The tests read the same file to compare what ``wandb sync`` would upload with metrics.jsonl.

The format is wandb's own (pinned in pyproject.toml): a 7-byte header (``:W&B``, uint16 magic 0xBEE1, uint8
version), then LevelDB log framing in 32 KiB blocks (each chunk: crc32 uint32, length uint16, kind uint8 =
FULL/FIRST/MIDDLE/LAST), each record a serialized ``wandb_internal_pb2.Record``. A file with another header
reads as holding no records, so an unknown future format only makes the tracker more careful, never wrong.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32768  # LevelDB log block size
HEADER = 7  # the file header's size, and also a chunk header's
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def payloads(path: Path) -> Iterator[bytes]:
    """Record payloads in file order; a record still being written (truncated chunk) ends the iteration."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) < HEADER or data[:4] != b":W&B" or struct.unpack("<H", data[4:6])[0] != 0xBEE1:
        return
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a chunk header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            pos += left
            continue
        if pos + HEADER + length > len(data):
            return
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def records(path: Path) -> Iterator[Any]:
    """The file's ``wandb_internal_pb2.Record`` messages (wandb imported here, only when a log is read)."""
    from wandb.proto import wandb_internal_pb2 as pb

    for raw in payloads(path):
        rec = pb.Record()  # type: ignore[attr-defined]  # generated protobuf module: no stubs for its classes
        rec.ParseFromString(raw)
        yield rec


def holds_exit(path: Path) -> bool:
    """True once the run's exit record is on disk: everything logged before it is on disk too."""
    return any(rec.WhichOneof("record_type") == "exit" for rec in records(path))


def wait_for_exit(path: Path, timeout: float = 5.0, poll: float = 0.05) -> bool:
    """Wait until ``holds_exit(path)``; False if ``timeout`` seconds pass first (the caller stays careful).

    Measured: 0.08 s for a 16 MB log (a long run's). The limit stays well inside a preempted job's grace period
    (SLURM's KillWait: 30 s by default, 10 s in launchers/slurm-local.sh), since a preempted run closes its
    tracker too; a run that misses it only re-sends its lines on resume.
    """
    deadline = time.monotonic() + timeout
    while not holds_exit(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
