"""``hydra/launcher=submitit_local``: the SLURM launcher's path on this machine, through submitit's local executor.

What runs is the SLURM launcher's (:func:`rlsweep.launching.slurm.run_jobs`): each process group pickled as a
:class:`~rlsweep.launching.slurm.PointJob`, its records given the job's id and log, the job's own records while it
runs, checkpoint-and-requeue on SIGUSR2 (preemption, or ``signal_delay_s`` before ``timeout_min``), and the waiting
launcher's reconciliation of jobs that ended without writing their end. Only the scheduler differs: submitit's
local executor starts each job at once as a controller process (its id is the job id) that runs the task and
restarts it when it asks to be requeued. So a user tries a cluster set-up (``setup`` lines, a pickled job that
resumes) before submitting it, as with Hydra's launcher of the same name, and the tests prove that path on any
machine, SLURM or not.

Two differences from SLURM: the executor has no queue that holds jobs, so the launcher submits ``max_parallel``
at a time and more as they end (it always waits); and a job submitted here is followed by its controller's process,
so ``rlsweep status`` on the same machine knows whether it still runs.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import submitit

from rlsweep.config.launchers import SubmititLocalSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point
from rlsweep.launching.slurm import Scheduler, reconcile, run_jobs

# The command line of a local executor's controller, to tell it from a process that reused its pid.
CONTROLLER = "submitit.local._local"


class LocalScheduler(Scheduler):
    """submitit's local executor as the scheduler: jobs are controller processes of this machine."""

    name = "submitit_local"

    def __init__(self, settings: SubmititLocalSettings) -> None:
        self.local = settings
        self.wait = True  # nothing but this launcher would submit the jobs beyond max_parallel
        self.max_array_size = 1_000_000
        self.poll_every = settings.poll_every
        self.progress_every = settings.progress_every

    def executor(self, sweep_dir: Path) -> submitit.Executor:
        s = self.local
        ex = submitit.LocalExecutor(folder=str(sweep_dir / ".submitit" / "%j"), max_num_timeout=s.max_num_timeout)
        ex.update_parameters(timeout_min=s.timeout_min, signal_delay_s=s.signal_delay_s, gpus_per_node=s.gpus_per_node,
                             tasks_per_node=1, nodes=1, setup=list(s.setup))  # fmt: skip
        return ex

    def room(self, running: int) -> int:
        most = self.local.max_parallel or os.cpu_count() or 1
        return max(0, most - running)

    def release(self, array: str) -> None:
        """Nothing is held: the local executor starts a job as it is submitted (its records are written only while
        it does not hold them, :func:`rlsweep.rundir.record.amend_unheld`)."""

    def states(self, arrays: Collection[str]) -> dict[str, str]:
        """RUNNING for each job whose controller still runs; the others are gone."""
        return {job_id: "RUNNING" for job_id in arrays if _controller_alive(job_id)}


def _controller_alive(job_id: str) -> bool:
    """The job's controller (its pid is the job id) still runs: the pid is a live controller's, by its command line
    in ``/proc`` (an ended controller not yet reaped by this launcher, a zombie, has none), else by the pid alone."""
    try:
        pid = int(job_id)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # another user's process with that pid: look at its command line
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return CONTROLLER in cmdline.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: the pid is all there is to go by
    except OSError:
        return False


class SubmititLocalLauncher:
    """``hydra/launcher=submitit_local``: the jobs through submitit's local executor; waits for all of them."""

    name = "submitit_local"

    def __init__(self, settings: SubmititLocalSettings) -> None:
        self.settings = settings

    def run(self, p: Plan, groups: list[list[Point]], ledger: Ledger) -> bool:
        run_jobs(groups, p.points, p.out_dir, ledger, LocalScheduler(self.settings))
        return True

    def reconcile(self, ledger: Ledger) -> None:
        reconcile(ledger, LocalScheduler(self.settings))  # jobs whose controller died without recording an end


LAUNCHER = SubmititLocalLauncher
