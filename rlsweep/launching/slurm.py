"""The SLURM launcher on submitit: job arrays, requeue on preemption and timeout, failures recorded truthfully.

1. Points go out as job arrays of at most ``max_array_size`` tasks (the cluster's MaxArraySize), with
   ``array_parallelism`` running at once; every sbatch setting comes from ``hydra.launcher.*``, with a
   cluster profile (a built-in name from ``rlsweep/launching/profiles`` or a path to your own YAML file)
   filling the keys left null. An array is submitted held and released once every point's record holds its
   job id, so the launcher and the job never write one record at the same time.
2. Each array task runs :func:`rlsweep.launching.job.run_points` on its run directories (:class:`PointJob`):
   one point, or with ``seeds_per_process=k`` up to k seeds of one configuration trained together in the task's
   one process (:func:`rlsweep.launching.points.process_groups`); each point keeps its own record, and every
   record of a task holds the task's job id and its log. On SIGUSR2 (time limit near, or preemption) submitit
   calls :meth:`PointJob.checkpoint`: every record of the task says preempted and the same task is requeued;
   each point resumes from its own last checkpoint and continues its own W&B run. hydra-submitit's default never
   requeues on timeout (``max_num_timeout=0``); here it does, up to ``max_num_timeout``.
3. SLURM reports an array task whose Python raised as COMPLETED; the record is what the job itself wrote
   (failed, with the error), and a job that left the queue without writing anything (``scancel`` before
   it started, a dead node) is recorded as cancelled by the waiting launcher or by ``rlsweep status``.
4. ``scontrol requeue`` stops a job with the same SIGTERM as ``scancel``, so the job records cancelled; the queue
   tells them apart (:func:`reconcile`): a requeued job is PENDING again once it has finished COMPLETING, and its
   record then says requeued until the next attempt runs. The waiting launcher takes an end as final only once
   the job has left the queue for good.
5. ``wait=false`` submits and returns the shell at once; ``rlsweep status <sweep>`` follows the sweep.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
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
    """A job's points as a submitit job: :func:`run_points` on their run directories, in the job's process (one
    point, or seeds of one configuration trained together)."""

    def __init__(self, run_dirs: Sequence[str]) -> None:
        self.run_dirs = [str(d) for d in run_dirs]

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A job pickled before jobs held several points (requeued across an upgrade) had one ``run_dir``.
        if "run_dirs" not in state and "run_dir" in state:
            state = {**state, "run_dirs": [state.pop("run_dir")]}
        self.__dict__.update(state)

    def __call__(self) -> None:
        from rlsweep.launching.job import run_points
        from rlsweep.lock import LockHeld

        try:
            run_points([Path(d) for d in self.run_dirs])
        except LockHeld as e:
            # Another attempt runs one of these points (a local launch of the same sweep, say): the job touched
            # none of them; their records are left as they are.
            print(f"rlsweep: {e}", flush=True)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # The training loop checkpoints itself every few iterations; requeueing the same points resumes there.
        for run_dir in self.run_dirs:
            record = RunRecord.read_or_none(Path(run_dir))
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


# SLURM job states (squeue's %T). A job in ALIVE will run (again); one that is ENDING has been signalled and its
# processes are on their way out, after which it either ends for good or, requeued, is PENDING again; any other
# state (CANCELLED, COMPLETED, FAILED, TIMEOUT, NODE_FAIL, ...), or no longer being listed, means it is gone.
ALIVE = ("PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING")
ENDING = ("COMPLETING", "STAGE_OUT")
# A requeued job waiting for its next start: its last process is gone and the next has not begun, so the launcher
# may write the record (once RUNNING, the next attempt writes it itself).
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def job_states() -> dict[str, str] | None:
    """State of every job and array task SLURM still knows, ended ones included (for MinJobAge seconds after their
    end); None without squeue or when it fails."""
    if shutil.which("squeue") is None:
        return None
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return None
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def queued_job_ids() -> set[str] | None:
    """Ids of the jobs and array tasks that will still run (pending, running, requeued); None without squeue."""
    states = job_states()
    return None if states is None else {job for job, state in states.items() if state in ALIVE}


def reconcile(ledger: Ledger, run_ids: list[str] | None = None) -> set[str] | None:
    """Bring SLURM points' records in line with the queue; returns the run ids whose job has not ended for good yet
    (queued, running, or ending), or None when the queue cannot be read.

    A job that left the queue without recording an end (scancel before it started, a dead node) is cancelled. A
    record that says cancelled while its job is queued again was a requeue (``scontrol requeue``): SLURM ends the
    job with the same SIGTERM as ``scancel``, so the job cannot tell the two apart and records cancelled; the
    queue can, once the job has finished COMPLETING: a requeued job is PENDING again, a cancelled one is not.
    """
    states = job_states()
    if states is None:
        return None
    wanted = None if run_ids is None else set(run_ids)
    unsettled: set[str] = set()
    for r in ledger.records():
        if r.launcher != "slurm" or not r.job_id or (wanted is not None and r.run_id not in wanted):
            continue
        state = states.get(r.job_id)
        if state in ALIVE or state in ENDING:
            unsettled.add(r.run_id)
            if r.status == "cancelled" and state in QUEUED:
                r.update(status="requeued", error=None)
        # 5 s of grace: a record written after the squeue above (a submission racing `rlsweep status`)
        elif r.status in ("pending", "running", "preempted", "requeued") and time.time() - r.updated > 5:
            r.update(status="cancelled", error=f"SLURM job {r.job_id} left the queue unfinished")
    return unsettled


def run_slurm(
    groups: list[list[Point]], points: list[Point], sweep_dir: Path, ledger: Ledger, s: SlurmSettings
) -> bool:
    """Submit ``groups`` (one array task each) with ``s`` (its profile already applied by the planner); with
    ``wait`` follow them to the end. Returns False when a point did not complete. Points whose job is still queued
    were left out by ``prepare``."""
    ex = executor_for(sweep_dir, s)
    todo = [p for group in groups for p in group]
    for start in range(0, len(groups), s.max_array_size):
        chunk = groups[start : start + s.max_array_size]
        jobs: list[Any] = []
        # Submitted held: each record gets its job id before the job can start and write the record itself.
        with ex.batch():
            for group in chunk:
                jobs.append(ex.submit(PointJob([str(sweep_dir / p.run_id) for p in group])))
        array = str(jobs[0].job_id).split("_")[0]
        for group, job in zip(chunk, jobs, strict=True):
            log = str(Path(str(job.paths.stdout)).resolve())  # the task's one log, for each of its points
            for p in group:
                ledger.update(p.run_id, status="pending", job_id=str(job.job_id), launcher="slurm", log=log)
        subprocess.run(["scontrol", "release", array], check=True, capture_output=True, timeout=60)
        n = sum(len(group) for group in chunk)
        tasks = f" in {len(chunk)} task(s)" if len(chunk) < n else ""
        print(f"[rlsweep] submitted {n} point(s){tasks} as SLURM array {array}", flush=True)
    ids = [p.run_id for p in points]
    if not s.wait:
        print(f"[rlsweep] not waiting; follow with: rlsweep status {sweep_dir}", flush=True)
        return True
    waiting = {p.run_id for p in todo}
    last_progress = time.time()
    while waiting:
        time.sleep(s.poll_every)
        unsettled = reconcile(ledger, sorted(waiting))
        for rid in list(waiting):
            record = ledger.get(rid)
            # An end counts once the job is gone (a record says cancelled during a requeue, too); a round without
            # the queue decides nothing.
            if record is not None and record.status in TERMINAL and unsettled is not None and rid not in unsettled:
                waiting.discard(rid)
        if time.time() - last_progress >= s.progress_every:
            last_progress = time.time()
            print(status_table(ledger, ids), flush=True)
    print(status_table(ledger, ids), flush=True)
    return all((r := ledger.get(p.run_id)) is not None and r.status == "completed" for p in todo)
