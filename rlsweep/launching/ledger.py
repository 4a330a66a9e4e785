"""The sweep ledger: one record per grid point, in ``<sweep_dir>/ledger/<run_id>.json``.

One file per point, written by replacing it atomically (temporary file, fsync, rename), means two jobs that
finish at the same moment never write the same file, so no update is lost, also on a shared network
filesystem where ``flock`` is unreliable. At any moment a record has one writer: the launcher before it
submits the point, the job while it runs (or the scheduler's preemption handler inside the job).

Statuses: pending (planned, not started), running, completed, failed, preempted (requeued by the scheduler,
will resume), cancelled (killed from outside, e.g. ``scancel``; a rerun resumes it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATUSES = ("pending", "running", "completed", "failed", "preempted", "cancelled")
FINISHED = ("completed",)


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Ledger:
    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.dir = self.sweep_dir / "ledger"

    def exists(self) -> bool:
        return self.dir.is_dir()

    def path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.json"

    def get(self, run_id: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self.path(run_id).read_text())
            return record
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.glob("*.json")):
            with contextlib.suppress(json.JSONDecodeError, OSError):
                yield json.loads(p.read_text())

    def update(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the point's record (creating it) and write it atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        record = self.get(run_id) or {"run_id": run_id, "status": "pending", "attempts": 0, "history": []}
        if "status" in fields and fields["status"] != record.get("status"):
            record["history"] = [*record.get("history", []), [time.time(), fields["status"]]][-50:]
        record.update(fields)
        record["updated"] = time.time()
        _write_atomic(self.path(run_id), record)
        return record

    def plan(self, run_id: str, name: str, overrides: list[str], run_dir: Path, total_steps: int) -> dict[str, Any]:
        """Record a planned point without touching the state of one that already ran."""
        existing = self.get(run_id)
        fields: dict[str, Any] = {
            "name": name,
            "overrides": overrides,
            "run_dir": str(run_dir),
            "total_steps": total_steps,
            "log": str(run_dir / "log.txt"),
        }
        if existing is None:
            fields["status"] = "pending"
        return self.update(run_id, **fields)


def job_identity() -> dict[str, Any]:
    """Where the current process runs: scheduler job id (array-aware), host, pid."""
    env = os.environ
    job_id = env.get("SLURM_ARRAY_JOB_ID")
    if job_id and env.get("SLURM_ARRAY_TASK_ID"):
        job_id = f"{job_id}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        job_id = env.get("SLURM_JOB_ID")
    return {"job_id": job_id, "host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
