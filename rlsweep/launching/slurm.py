"""The SLURM launcher on submitit: job arrays, requeue on preemption and timeout, failures recorded truthfully.

1. Points go out as job arrays of at most ``max_array_size`` tasks (the cluster's MaxArraySize), with
   ``array_parallelism`` running at once; every sbatch setting comes from ``hydra.launcher.*``, with a
   cluster profile (a built-in name from ``rlsweep/launching/profiles`` or a path to your own YAML file)
   filling the keys left null. An array is submitted held and released once every point's record holds its
   job id, so the launcher and the job never write one record at the same time.
2. Each array task runs :func:`rlsweep.launching.job.run_point` on its run directory (:class:`PointJob`).
   On SIGUSR2 (time limit near, or preemption) submitit calls :meth:`PointJob.checkpoint`: the record says
   preempted and the same point is requeued; it resumes from its own last checkpoint and continues the same
   W&B run. hydra-submitit's default never requeues on timeout (``max_num_timeout=0``); here it does, up to
   ``max_num_timeout``.
3. SLURM reports an array task whose Python raised as COMPLETED; the record is what the job itself wrote
   (failed, with the error), and a job that left the queue without writing anything (``scancel`` before
   it started, a dead node) is recorded as cancelled by the waiting launcher or by ``rlsweep status``.
4. ``wait=false`` submits and returns the shell at once; ``rlsweep status <sweep>`` follows the sweep.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import submitit

from rlsweep.config.launchers import SlurmSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Point
from rlsweep.launching.points import status_table
from rlsweep.record import RunRecord

TERMINAL = ("completed", "failed", "cancelled")


class PointJob(submitit.helpers.Checkpointable):
    """One grid point as a submitit job: :func:`run_point` on its run directory, in the job's process."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def __call__(self) -> None:
        from rlsweep.launching.job import run_point

        run_point(Path(self.run_dir))

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # The training loop checkpoints itself every few iterations; requeueing the same point resumes there.
        record = RunRecord.read_or_none(Path(self.run_dir))
        if record is not None:
            record.update(status="preempted", error=None)
        return submitit.helpers.DelayedSubmission(self)


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
        # held at submission, released once every record holds its job id (run_slurm)
        "slurm_additional_parameters": {**s.additional_parameters, "hold": True},
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
    wanted = None if run_ids is None else set(run_ids)
    for r in ledger.records():
        if wanted is not None and r.run_id not in wanted:
            continue
        waiting = r.status in ("pending", "running", "preempted") and r.launcher == "slurm"
        # 5 s of grace: a requeued job briefly leaves squeue's list before it is pending again
        if waiting and r.job_id and r.job_id not in queued and time.time() - r.updated > 5:
            r.update(status="cancelled", error=f"SLURM job {r.job_id} left the queue unfinished")


def run_slurm(todo: list[Point], points: list[Point], sweep_dir: Path, ledger: Ledger, s: SlurmSettings) -> bool:
    """Submit ``todo`` with ``s`` (its profile already applied by the planner); with ``wait`` follow it to the end.
    Returns False when a point did not complete."""
    queued = queued_job_ids() or set()
    records = {p.run_id: ledger.get(p.run_id) for p in todo}
    still_queued = [p for p in todo if (r := records[p.run_id]) is not None and r.job_id in queued]
    if still_queued:
        print(f"[rlsweep] skipping {len(still_queued)} point(s) whose SLURM job is still queued or running", flush=True)
    todo = [p for p in todo if p not in still_queued]
    ex = executor_for(sweep_dir, s)
    for start in range(0, len(todo), s.max_array_size):
        chunk = todo[start : start + s.max_array_size]
        jobs: list[Any] = []
        # Submitted held: each record gets its job id before the job can start and write the record itself.
        with ex.batch():
            for p in chunk:
                jobs.append(ex.submit(PointJob(str(sweep_dir / p.run_id))))
        array = str(jobs[0].job_id).split("_")[0]
        for p, job in zip(chunk, jobs, strict=True):
            ledger.update(p.run_id, status="pending", job_id=str(job.job_id), launcher="slurm",
                          log=str(Path(str(job.paths.stdout)).resolve()))  # fmt: skip
        subprocess.run(["scontrol", "release", array], check=True, capture_output=True, timeout=60)
        print(f"[rlsweep] submitted {len(chunk)} point(s) as SLURM array {array}", flush=True)
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
            record = ledger.get(rid)
            if record is not None and record.status in TERMINAL:
                waiting.discard(rid)
        if time.time() - last_progress >= s.progress_every:
            last_progress = time.time()
            print(status_table(ledger, ids), flush=True)
    print(status_table(ledger, ids), flush=True)
    return all((r := ledger.get(p.run_id)) is not None and r.status == "completed" for p in todo)
