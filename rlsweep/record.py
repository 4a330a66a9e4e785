"""The run record: one typed file, ``<run_dir>/run.json``, that says what a run is and how far it got.

The launcher writes it when it plans the point (pending), the job while it runs (running, progress, W&B id),
the tracker at each checkpoint, and whoever sees the end (completed, failed, preempted, requeued, cancelled).
The sweep status, the launchers' decisions (what to skip, what to resume) and the analysis all read this one
record, so they cannot disagree. At any moment a record has one writer: the launcher before it starts the
point, the job while it runs and holds the point's lock (:mod:`rlsweep.lock`; or the scheduler's preemption
handler inside the job), the launcher again once the job's process is gone. Every write replaces the file
atomically (temporary file, fsync, rename), which also holds on a shared network filesystem where ``flock`` is
unreliable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

RUN_FILE = "run.json"
# The checkpoint files of a run directory (written by rlsweep.training.checkpoint; named here so that the
# launcher can look at them without importing torch).
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"
STATUSES = ("pending", "running", "completed", "failed", "preempted", "requeued", "cancelled")
# Statuses after which the job's process is gone; anything but completed is resumed by a rerun.
ENDED = ("completed", "failed", "preempted", "cancelled")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` in one rename: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def job_identity() -> dict[str, Any]:
    """Where the current process runs: scheduler job id (array-aware), host, pid."""
    env = os.environ
    job_id = env.get("SLURM_ARRAY_JOB_ID")
    if job_id and env.get("SLURM_ARRAY_TASK_ID"):
        job_id = f"{job_id}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        job_id = env.get("SLURM_JOB_ID")
    return {"job_id": job_id, "host": socket.gethostname(), "pid": os.getpid()}
