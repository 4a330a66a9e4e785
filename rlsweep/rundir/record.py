"""The run record: one typed file, ``<run_dir>/run.json``, that says what a run is and how far it got.

The launcher writes it when it plans the point (pending), the job while it runs (running, progress, W&B id),
the tracker at each checkpoint, and whoever sees the end (completed, failed, preempted, requeued, cancelled).
The sweep status, the launchers' decisions (what to skip, what to resume) and the analysis all read this one
record, so they cannot disagree.

Who may write, and how no write undoes a newer one:
- Every change is a read-modify-write under the record's lock (:func:`record_lock`, a ``flock`` on
  ``.run.json.lock``, which the kernel or the NFS server drops when its process dies; held for milliseconds; on
  a filesystem without flock, an exclusively created lock file instead).
  :func:`amend` is that cycle: read the file as it is now, check what the writer expects, set fields, write.
- The job writes while it holds the point's lock (:mod:`rlsweep.rundir.lock`), the scheduler's preemption handler and
  SIGTERM handler inside it too (the record lock is re-entrant, so a handler that interrupts the job's own write
  waits for nothing, and that write, abandoned, never happens).
- A launcher (planning, starting, seeing a job's end, reconciling with SLURM's queue) writes only while nobody
  holds the point's lock, and only the record it based its decision on: a compare-and-swap on ``revision``,
  which every write increments. A launcher that finds the record changed since it read it leaves the point alone.
Every write replaces the file atomically (a temporary file of its own, fsync, rename): a reader sees the old
record or the new one, never half, also on a network filesystem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock, Timeout

RUN_FILE = "run.json"
RECORD_LOCK = ".run.json.lock"  # the record's read-modify-write lock (record_lock)
# A record lock is held for one read and one write (milliseconds); a minute means a hung filesystem.
RECORD_LOCK_TIMEOUT_S = 60.0
# The checkpoint files of a run directory (written by rlsweep.training.checkpoint; named here so that the
# launcher can look at them without importing torch).
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"
STATUSES = ("pending", "running", "completed", "failed", "preempted", "requeued", "cancelled")
# Statuses after which the job's process is gone; anything but completed is resumed by a rerun.
ENDED = ("completed", "failed", "preempted", "cancelled")


class RecordWriteError(OSError):
    """A record (or another state file) could not be written: the path, and the system's reason (``errno`` kept)."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename, flushed to the disk (:func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", durable=True)


def write_text_atomic(path: Path, text: str, durable: bool = False) -> None:
    """Replace ``path`` with ``text`` in one rename: a reader sees the old file or the new one, never half;
    ``durable``: fsync before the rename (the run record and the sweep's state files; a run's config.yaml, written
    by the launcher, is not).

    The temporary file's name is this write's own (pid and a random token): a signal handler that writes the same
    record while this write is half done (a preemption) must not share its file. If anything fails (a full disk,
    an unwritable directory, a directory in the file's place) the temporary file is removed and the old file stays
    as it was; the error is a :class:`RecordWriteError` naming the path, with the system's errno.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RecordWriteError(e.errno, f"cannot write {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def record_lock(run_dir: Path) -> Iterator[None]:
    """Hold the record of ``run_dir`` for one read-modify-write (re-entrant within this process's thread)."""
    path = Path(run_dir) / RECORD_LOCK
    # One FileLock object per path in this process (is_singleton): nested and signal-handler uses count up
    # instead of taking a second flock that would wait for the first for ever. The file stays after a flock. On a
    # filesystem without flock (Lustre mounted without -o flock), filelock falls back to a lock file created
    # exclusively (it warns once), which a process killed while holding it leaves behind.
    lock = FileLock(path, timeout=RECORD_LOCK_TIMEOUT_S, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise RecordWriteError(0, f"cannot lock {path}: held for {RECORD_LOCK_TIMEOUT_S:.0f} s (a hung filesystem; or, "
                                  "where the filesystem has no flock, left by a killed process: then remove it)"
                               ) from None  # fmt: skip
    except OSError as e:
        raise RecordWriteError(e.errno, f"cannot lock {path}: {e.strerror or e}") from e
    try:
        yield
    finally:
        lock.release()


@dataclass
class RunRecord:
    """What a run is (identity, choices, budget) and where it stands (status, attempts, progress, job)."""

    # identity: fixed when the point is planned
    run_id: str
    name: str = ""  # the configuration's name, shared by its seeds (ppo_rnd_b1)
    seed: int = 0
    sweep: str = ""  # the sweep's name (the W&B group); empty for a single run
    choices: dict[str, str] = field(default_factory=dict)  # group -> option (model: B, critic_init: sqrt2)
    overrides: list[str] = field(default_factory=list)  # the command-line overrides of this point
    total_steps: int = 0
    run_dir: str = ""
    fingerprint: str | None = None  # of the config that decides training (rlsweep.config.fingerprint)
    # where it stands
    status: str = "pending"
    attempts: int = 0  # job starts so far (a resume after preemption is one more)
    history: list[list[Any]] = field(default_factory=list)  # [time, status] of every status change
    updated: float = 0.0
    revision: int = 0  # writes so far: what a launcher's compare-and-swap compares (amend)
    error: str | None = None
    global_step: int = 0  # agent steps covered by the last checkpoint
    final: dict[str, Any] = field(default_factory=dict)  # the last logged metrics of a completed run
    changes: list[list[Any]] = field(default_factory=list)  # [time, what]: restarts, config changes, rebuilds
    # where it runs
    launcher: str = ""  # local | slurm | inline (a single run in the calling process)
    job_id: str | None = None  # SLURM job (array-aware: 123_4)
    host: str | None = None
    pid: int | None = None
    gpu: int | None = None
    log: str = ""  # the job's console log
    # tracking
    wandb_id: str | None = None
    wandb_step: int = 0  # last global_step W&B is known to hold (a closed run whose log has its exit record)
    wandb: dict[str, Any] = field(default_factory=dict)  # project, entity, mode, group
    git: dict[str, Any] = field(default_factory=dict)  # commit and dirty flag of the code that ran

    HISTORY_LIMIT: ClassVar[int] = 50

    # ---- files
    @staticmethod
    def path(run_dir: Path) -> Path:
        return Path(run_dir) / RUN_FILE

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Known fields only (files written by older versions may carry others); a legacy ``result`` is ``final``."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "final" not in values and isinstance(data.get("result"), dict):
            values["final"] = data["result"]
        if "run_id" not in values:
            raise ValueError("run record has no run_id")
        return cls(**values)

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord:
        """The record in ``run_dir``; raises FileNotFoundError, or ValueError for a damaged file."""
        path = cls.path(run_dir)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        return cls.from_dict(data)

    @classmethod
    def read_or_none(cls, run_dir: Path) -> RunRecord | None:
        try:
            return cls.read(run_dir)
        except (FileNotFoundError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self) -> None:
        if not self.run_dir:
            raise ValueError(f"run record {self.run_id} has no run_dir")
        self.updated = time.time()
        self.revision += 1
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path(Path(self.run_dir)), self.to_dict())

    # ---- changes
    def set_status(self, status: str) -> None:
        """A change of status enters the history and starts without the previous status's error."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; allowed: {', '.join(STATUSES)}")
        if status != self.status:
            self.history = [*self.history, [time.time(), status]][-self.HISTORY_LIMIT :]
            self.error = None
        self.status = status

    def update(self, **fields: Any) -> RunRecord:
        """Set ``fields`` (``status`` first, through :meth:`set_status`) and write."""
        status = fields.pop("status", None)
        if status is not None:
            self.set_status(status)
        for key, value in fields.items():
            if not hasattr(self, key) or key == "HISTORY_LIMIT":
                raise AttributeError(f"RunRecord has no field {key!r}")
            setattr(self, key, value)
        self.write()
        return self

    @property
    def log_path(self) -> Path:
        return Path(self.log) if self.log else Path(self.run_dir) / "log.txt"


def amend(run_dir: Path, expect: Callable[[RunRecord], bool] | None = None, **fields: Any) -> RunRecord | None:
    """Under the record's lock: read ``run_dir``'s record as it is now and, if it exists and ``expect`` (if given)
    holds for it, set ``fields`` (through :meth:`RunRecord.update`) and write it. Returns the written record, or
    None when there was none or ``expect`` said no (then nothing was written)."""
    with record_lock(run_dir):
        record = RunRecord.read_or_none(run_dir)
        if record is None or (expect is not None and not expect(record)):
            return None
        return record.update(**fields)


def amend_unheld(run_dir: Path, expect: Callable[[RunRecord], bool], **fields: Any) -> RunRecord | None:
    """A launcher's write: :func:`amend`, but only while nobody holds the point
    (:func:`rlsweep.rundir.lock.live_holder`, checked under the record's lock, which the holder's own writes also
    take) and ``expect`` holds."""
    from rlsweep.rundir.lock import live_holder

    return amend(run_dir, lambda r: live_holder(Path(run_dir)) is None and expect(r), **fields)


def unchanged(read: RunRecord) -> Callable[[RunRecord], bool]:
    """``expect`` of a compare-and-swap: the record is still the one ``read`` was (no write since)."""
    return lambda now: (now.revision, now.updated) == (read.revision, read.updated)


def set_aside(run_dir: Path, names: Sequence[str]) -> Path:
    """Move a run's files ``names`` into ``discarded/<time>/`` (nothing is deleted); return that folder, a new one
    (``<time>-2`` ... when two set-asides fall in one second: no file overwrites an earlier one's)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (Path(run_dir) / "discarded").mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        where = Path(run_dir) / "discarded" / (stamp if n == 1 else f"{stamp}-{n}")
        with contextlib.suppress(FileExistsError):
            where.mkdir()
            break
    for name in names:
        if (Path(run_dir) / name).exists():
            shutil.move(str(Path(run_dir) / name), str(where / name))
    return where


def job_identity() -> dict[str, Any]:
    """Where the current process runs: scheduler job id (array-aware), host, pid."""
    env = os.environ
    job_id = env.get("SLURM_ARRAY_JOB_ID")
    if job_id and env.get("SLURM_ARRAY_TASK_ID"):
        job_id = f"{job_id}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        job_id = env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID")  # SLURM, or submitit_local
    return {"job_id": job_id, "host": socket.gethostname(), "pid": os.getpid()}
