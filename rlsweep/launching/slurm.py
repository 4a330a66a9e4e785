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

import signal
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from rlsweep.config.launchers import SlurmSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point
from rlsweep.launching.points import status_table
from rlsweep.launching.queue import ALIVE, ENDING, QUEUED, job_states
from rlsweep.rundir.record import RunRecord, amend, amend_unheld, unchanged

TERMINAL = ("completed", "failed", "cancelled")


class SubmissionRefused(RuntimeError):
    """SLURM refused a sweep's first array: nothing was submitted (one line for the user, exit status 1)."""


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
        from rlsweep.rundir.lock import LockHeld

        # The task's log, into each record as the job starts: the launcher writes it too, but only into a record
        # the job has not taken yet (the local executor starts a job before its launcher has written anything).
        log = str(Path(str(submitit.JobEnvironment().paths.stdout)).resolve())
        try:
            run_points([Path(d) for d in self.run_dirs], log=log)
        except LockHeld as e:
            # Another attempt runs one of these points (a local launch of the same sweep, say): the job touched
            # none of them; their records are left as they are.
            print(f"rlsweep: {e}", flush=True)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # The training loop checkpoints itself every few iterations; requeueing the same points resumes there.
        for run_dir in self.run_dirs:
            amend(Path(run_dir), status="preempted", error=None)
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


class Scheduler:
    """Where the launcher's jobs run and how it asks after them: SLURM (this class: sbatch through submitit, held
    arrays released with ``scontrol``, the queue read with ``squeue``), or submitit's local executor on this machine
    (:class:`rlsweep.launching.submitit_local.LocalScheduler`), so that the same path, from the pickled job to the
    waiting launcher's reconciliation, also runs where there is no cluster."""

    name = "slurm"  # what the records' ``launcher`` says

    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings
        self.wait = settings.wait
        self.max_array_size = settings.max_array_size
        self.poll_every = settings.poll_every
        self.progress_every = settings.progress_every

    def executor(self, sweep_dir: Path) -> submitit.Executor:
        return executor_for(sweep_dir, self.settings)

    def room(self, running: int) -> int:
        """How many more tasks to submit while ``running`` of this launch's run: SLURM takes them all (in arrays of
        ``max_array_size``) and runs ``array_parallelism`` at once."""
        return sys.maxsize

    def release(self, array: str) -> None:
        subprocess.run(["scontrol", "release", array], check=True, capture_output=True, timeout=60)

    def states(self, arrays: Collection[str]) -> dict[str, str] | None:
        """The state (SLURM's words) of each job or task still known of ``arrays``; None when the queue cannot be
        read."""
        return job_states(arrays)


@dataclass
class QueueView:
    """What :func:`reconcile` saw: the records it read (as it left them) and the points whose job has not ended for
    good yet."""

    records: dict[str, RunRecord]
    unsettled: set[str]


def reconcile(ledger: Ledger, scheduler: Scheduler, run_ids: Collection[str] | None = None) -> QueueView | None:
    """Bring the scheduler's points' records (of ``run_ids``, else all) in line with its queue, asked once for their
    jobs; None when the queue cannot be read.

    A job that left the queue without recording an end (scancel before it started, a dead node) is cancelled. A
    record that says cancelled while its job is queued again was a requeue (``scontrol requeue``): SLURM ends the
    job with the same SIGTERM as ``scancel``, so the job cannot tell the two apart and records cancelled; the
    queue can, once the job has finished COMPLETING: a requeued job is PENDING again, a cancelled one is not. Each
    write is a launcher's (:func:`rlsweep.rundir.record.amend_unheld`): only the record read here, only while nobody
    holds the point, so a job that ended or a launch that took the point in the meantime is never overwritten.
    """
    if run_ids is None:
        records = list(ledger.records())
    else:
        records = [r for rid in run_ids if (r := ledger.get(rid)) is not None]
    ours = [r for r in records if r.launcher == scheduler.name and r.job_id]
    states = scheduler.states({str(r.job_id).split("_")[0] for r in ours})
    if states is None:
        return None
    view = QueueView({r.run_id: r for r in records}, set())
    for r in ours:
        state = states.get(str(r.job_id))
        written = None
        if state in ALIVE or state in ENDING:
            view.unsettled.add(r.run_id)
            if r.status == "cancelled" and state in QUEUED:
                written = amend_unheld(Path(r.run_dir), unchanged(r), status="requeued", error=None)
        # 5 s of grace: a submission's record written just before its job reached the queue's answer.
        elif r.status in ("pending", "running", "preempted", "requeued") and time.time() - r.updated > 5:
            why = f"{scheduler.name} job {r.job_id} left the queue unfinished"
            written = amend_unheld(Path(r.run_dir), unchanged(r), status="cancelled", error=why)
        if written is not None:
            view.records[r.run_id] = written
    return view


class SlurmLauncher:
    """``hydra/launcher=slurm``: the jobs as SLURM job arrays; follows them to the end unless ``wait=false``."""

    name = "slurm"

    def __init__(self, settings: SlurmSettings) -> None:
        self.settings = settings

    def run(self, p: Plan, groups: list[list[Point]], ledger: Ledger) -> bool:
        scheduler = Scheduler(self.settings)
        submitted = run_jobs(groups, p.points, p.out_dir, ledger, scheduler)
        return scheduler.wait or not submitted

    def reconcile(self, ledger: Ledger) -> None:
        reconcile(ledger, Scheduler(self.settings))  # jobs that left the queue without recording an end


LAUNCHER = SlurmLauncher


def run_jobs(
    groups: list[list[Point]], points: list[Point], sweep_dir: Path, ledger: Ledger, scheduler: Scheduler
) -> bool:
    """Submit ``groups`` (one array task each) to ``scheduler``; while it waits, follow them to the end, submitting
    more as the scheduler has room. Returns False when the scheduler refused an array (after the ones before it were
    submitted; :class:`SubmissionRefused` if it refused the first) or, waiting, when a point did not complete.
    Points whose job is still queued were left out by ``prepare``.

    Ctrl-C and SIGTERM stop the launcher (KeyboardInterrupt) at its next turn, within 0.2 s of waiting, and never in
    the middle of an array's submission and its records; its jobs run on. The handlers are installed explicitly, as
    the local launcher's are: a launcher started with SIGINT ignored (a background job of a script) still stops."""
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        return _run_jobs(groups, points, sweep_dir, ledger, scheduler, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pause(seconds: float, stop: list[int]) -> None:
    """Sleep ``seconds``, or less once a stop is asked (a signal does not cut a sleep short: PEP 475)."""
    end = time.monotonic() + seconds
    while not stop and (left := end - time.monotonic()) > 0:
        time.sleep(min(0.2, left))


def _run_jobs(
    groups: list[list[Point]],
    points: list[Point],
    sweep_dir: Path,
    ledger: Ledger,
    scheduler: Scheduler,
    stop: list[int],
) -> bool:
    ex = scheduler.executor(sweep_dir)
    left = list(groups)
    todo: list[Point] = []
    tasks: list[list[str]] = []  # the run ids of each submitted task
    waiting: set[str] = set()
    refused = False
    ids = [p.run_id for p in points]
    last_progress = time.time()
    while True:
        if stop:
            raise KeyboardInterrupt
        running = sum(1 for task in tasks if waiting.intersection(task))
        room = scheduler.room(running)
        while left and room > 0 and not refused:
            chunk = left[: min(scheduler.max_array_size, room)]
            try:
                jobs = _submit(ex, chunk, sweep_dir)
            except submitit.core.utils.FailedJobError as e:
                # The cluster refused this array (its job table full, a limit reached): the arrays before it run;
                # the rest stay pending, and a rerun of the same command submits them.
                n_left = sum(len(group) for group in left)
                reason = next((line for line in str(e).splitlines() if line.strip()), "no reason given")
                print(f"[rlsweep] SLURM refused the submission of {n_left} point(s) ({reason}); {len(todo)} were "
                      "submitted; rerun the same command once the cluster takes jobs again to submit the rest",
                      flush=True)  # fmt: skip
                if not todo:
                    raise SubmissionRefused(f"SLURM refused the submission ({reason}); nothing was submitted") from None
                refused = True
                break
            del left[: len(chunk)]
            room -= len(chunk)
            array = str(jobs[0].job_id).split("_")[0]
            for group, job in zip(chunk, jobs, strict=True):
                log = str(Path(str(job.paths.stdout)).resolve())  # the task's one log, for each of its points
                for p in group:
                    # Unless another launch took the point since this one prepared it (its job runs or ran it), or
                    # the job already started and wrote its record itself (the local executor does not hold jobs).
                    amend_unheld(ledger.run_dir(p.run_id), lambda r: r.status not in ("running", "completed"),
                                 status="pending", job_id=str(job.job_id), launcher=scheduler.name,
                                 log=log)  # fmt: skip
            scheduler.release(array)
            todo += [p for group in chunk for p in group]
            tasks += [[p.run_id for p in group] for group in chunk]
            waiting |= {p.run_id for group in chunk for p in group}
            n = sum(len(group) for group in chunk)
            where = f"as SLURM array {array}" if scheduler.name == "slurm" else f"to {scheduler.name}"
            print(f"[rlsweep] submitted {n} point(s){f' in {len(chunk)} task(s)' if len(chunk) < n else ''} {where}",
                  flush=True)  # fmt: skip
        if not scheduler.wait:
            print(f"[rlsweep] not waiting; follow with: rlsweep status {sweep_dir}", flush=True)
            return not refused
        if not waiting:
            break
        # Light on a shared cluster whatever the sweep's size: each poll is one squeue call (reconcile) and reads of
        # records; nothing here calls sacct or scontrol, and submission is one sbatch and one release per array.
        _pause(scheduler.poll_every, stop)
        if stop:
            raise KeyboardInterrupt
        view = reconcile(ledger, scheduler, sorted(waiting))
        if view is None:
            continue  # a round without the queue decides nothing
        for rid in list(waiting):
            record = view.records.get(rid)
            # An end counts once the job is gone (a record says cancelled during a requeue, too).
            if record is not None and record.status in TERMINAL and rid not in view.unsettled:
                waiting.discard(rid)
        if time.time() - last_progress >= scheduler.progress_every:
            last_progress = time.time()
            print(status_table(ledger, ids), flush=True)
    print(status_table(ledger, ids), flush=True)
    return not refused and all((r := ledger.get(p.run_id)) is not None and r.status == "completed" for p in todo)


def _submit(ex: submitit.Executor, chunk: list[list[Point]], sweep_dir: Path) -> list[Any]:
    """One array of ``chunk``'s tasks; on SLURM submitted held, so that each record gets its job id before the job
    can start and write the record itself."""
    jobs: list[Any] = []
    with ex.batch():
        for group in chunk:
            jobs.append(ex.submit(PointJob([str(sweep_dir / p.run_id) for p in group])))
    return jobs
