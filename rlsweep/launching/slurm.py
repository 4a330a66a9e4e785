"""The SLURM launcher on submitit: job arrays, requeue on preemption and timeout, failures recorded truthfully.

1. Points go out as job arrays of at most ``max_array_size`` tasks (the cluster's MaxArraySize), with
   ``array_parallelism`` running at once; every sbatch setting comes from ``hydra.launcher.*``, with a
   cluster profile (``launchers/profiles/<name>.yaml``) filling the keys left null.
2. Each array task runs its point in-process (:class:`PointJob`). On SIGUSR2 (time limit near, or
   preemption) submitit calls :meth:`PointJob.checkpoint`: the ledger says preempted and the same point is
   requeued; it resumes from its own last checkpoint and continues the same W&B run. hydra-submitit's
   default never requeues on timeout (``max_num_timeout=0``); here it does, up to ``max_num_timeout``.
3. SLURM reports an array task whose Python raised as COMPLETED; the ledger is what the job itself wrote
   (failed, with the error), and a job that left the queue without writing anything (``scancel`` before
   it started, a dead node) is recorded as cancelled by the waiting launcher or by ``rlsweep status``.
4. ``wait=false`` submits and returns the shell at once; ``rlsweep status <sweep>`` follows the sweep.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import submitit
import yaml

from rlsweep.config.launchers import SlurmSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.points import Point, status_table

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"  # built-in cluster profiles (package data)
TERMINAL = ("completed", "failed", "cancelled")


class PointJob(submitit.helpers.Checkpointable):
    """One grid point as a submitit job: runs ``python -m rlsweep <args>`` in this process."""

    def __init__(self, args: list[str], sweep_dir: str, run_id: str) -> None:
        self.args = args
        self.sweep_dir = sweep_dir
        self.run_id = run_id

    def __call__(self) -> None:
        from rlsweep.launching.app import main

        code = main(self.args)
        if code:
            raise RuntimeError(f"{self.run_id} refused its config (exit status {code})")

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # The training loop checkpoints itself every few iterations; requeueing the same point resumes there.
        Ledger(Path(self.sweep_dir)).update(self.run_id, status="preempted")
        return submitit.helpers.DelayedSubmission(self)


def load_profile(settings: SlurmSettings) -> SlurmSettings:
    """Fill the keys left null from the cluster profile, then the built-in fallbacks."""
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    if settings.profile:
        path = PROFILE_DIR / f"{settings.profile}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
            raise ValueError(f"hydra.launcher.profile={settings.profile!r} not found; allowed: {known}")
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if key not in values:
                raise ValueError(f"profile {path.name}: unknown key {key!r}; allowed: {', '.join(values)}")
            if values[key] is None or values[key] in ([], {}):
                values[key] = value
    values["gpus_per_node"] = 1 if values["gpus_per_node"] is None else values["gpus_per_node"]
    values["cpus_per_task"] = 8 if values["cpus_per_task"] is None else values["cpus_per_task"]
    return SlurmSettings(**values)


def executor_for(sweep_dir: Path, s: SlurmSettings) -> submitit.AutoExecutor:
    ex = submitit.AutoExecutor(
        folder=str(sweep_dir / ".submitit" / "%j"), cluster="slurm", slurm_max_num_timeout=s.max_num_timeout
    )
    params: dict[str, Any] = {
        "name": s.job_name,
        "timeout_min": s.timeout_min,
        "cpus_per_task": s.cpus_per_task,
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_array_parallelism": s.array_parallelism,
        "slurm_signal_delay_s": s.signal_delay_s,
        "slurm_setup": list(s.setup),
        "slurm_additional_parameters": dict(s.additional_parameters),
    }
    if s.gpus_per_node:
        params["gpus_per_node"] = s.gpus_per_node
    if s.mem_gb:
        params["mem_gb"] = s.mem_gb
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(s, key):
            params[f"slurm_{key}"] = getattr(s, key)
    ex.update_parameters(**params)
    return ex


def queued_job_ids() -> set[str] | None:
    """Ids of the jobs and array tasks SLURM still knows (pending, running, requeued); None without squeue."""
    if shutil.which("squeue") is None:
        return None
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return None
    # A cancelled job lingers as COMPLETING for a few seconds: it will not run again, so it does not count.
    alive = ("PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING")
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    return {row[0] for row in rows if len(row) == 2 and row[1] in alive}


def reconcile(ledger: Ledger, run_ids: list[str] | None = None) -> None:
    """Mark points whose job left the queue without recording an end (scancel, dead node) as cancelled."""
    queued = queued_job_ids()
    if queued is None:
        return
    for r in ledger.records():
        if run_ids is not None and r["run_id"] not in run_ids:
            continue
        job = r.get("job_id")
        waiting = r.get("status") in ("pending", "running", "preempted") and r.get("launcher") == "slurm"
        # 5 s of grace: a requeued job briefly leaves squeue's list before it is pending again
        if waiting and job and str(job) not in queued and time.time() - float(r.get("updated", 0)) > 5:
            ledger.update(r["run_id"], status="cancelled", error=f"SLURM job {job} left the queue unfinished")


def run_slurm(todo: list[Point], points: list[Point], sweep_dir: Path, ledger: Ledger, raw: SlurmSettings) -> bool:
    """Submit ``todo``; with ``wait`` follow it to the end. Returns False when a point failed."""
    s = load_profile(raw)
    queued = queued_job_ids() or set()
    still_queued = [p for p in todo if str((ledger.get(p.run_id) or {}).get("job_id")) in queued]
    if still_queued:
        print(f"[rlsweep] skipping {len(still_queued)} point(s) whose SLURM job is still queued or running", flush=True)
    todo = [p for p in todo if p not in still_queued]
    ex = executor_for(sweep_dir, s)
    for start in range(0, len(todo), s.max_array_size):
        chunk = todo[start : start + s.max_array_size]
        jobs: list[Any] = []
        with ex.batch():
            for p in chunk:
                p.run_dir.mkdir(parents=True, exist_ok=True)
                jobs.append(ex.submit(PointJob(p.job_args(sweep_dir.name), str(sweep_dir), p.run_id)))
        for p, job in zip(chunk, jobs, strict=True):
            ledger.update(p.run_id, status="pending", job_id=str(job.job_id), launcher="slurm",
                          log=str(Path(str(job.paths.stdout)).resolve()))  # fmt: skip
        print(f"[rlsweep] submitted {len(chunk)} point(s) as SLURM array {jobs[0].job_id.split('_')[0]}", flush=True)
    ids = [p.run_id for p in points]
    if not s.wait:
        print(f"[rlsweep] not waiting; follow with: rlsweep status {sweep_dir}", flush=True)
        return True
    waiting = {p.run_id for p in todo}
    last_progress = time.time()
    while waiting:
        time.sleep(s.poll_every)
        reconcile(ledger, sorted(waiting))
        for rid in list(waiting):
            if (ledger.get(rid) or {}).get("status") in TERMINAL:
                waiting.discard(rid)
        if time.time() - last_progress >= s.progress_every:
            last_progress = time.time()
            print(status_table(ledger, ids), flush=True)
    print(status_table(ledger, ids), flush=True)
    return all((ledger.get(p.run_id) or {}).get("status") == "completed" for p in todo)
