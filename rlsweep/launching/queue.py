"""SLURM's queue, asked: the state of a sweep's jobs, in one ``squeue`` call whatever their number.

Read by the launch's planning (:mod:`rlsweep.launching.points`: is a point's job still queued?) and by the SLURM
launcher's reconciliation (:mod:`rlsweep.launching.slurm`); it needs nothing of submitit, so planning a local sweep
does not import it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Collection

# SLURM job states (squeue's %T). A job in ALIVE will run (again); one that is ENDING has been signalled and its
# processes are on their way out, after which it either ends for good or, requeued, is PENDING again; any other
# state (CANCELLED, COMPLETED, FAILED, TIMEOUT, NODE_FAIL, ...), or no longer being listed, means it is gone.
ALIVE = ("PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING")
ENDING = ("COMPLETING", "STAGE_OUT")
# A requeued job waiting for its next start: its last process is gone and the next has not begun, so the launcher
# may write the record (once RUNNING, the next attempt writes it itself).
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def job_states(arrays: Collection[str] | None = None) -> dict[str, str] | None:
    """State of each job and array task SLURM still knows (ended ones too, for MinJobAge seconds after their end) of
    the jobs ``arrays`` (job or array ids), else of this user's; None without squeue or when it fails.

    One squeue call, whatever the number of tasks, answered by the controller for those jobs only, not for every
    job of a shared cluster. By job id, a sweep's status reads the same for a colleague as for the user who
    submitted it; squeue refuses a list none of whose jobs it still knows ("Invalid job id"): then all are gone.
    Without ids, the user's own jobs (``--user`` with the numeric uid, what ``--me`` of SLURM >= 20.11 does)."""
    if arrays is not None and not arrays:
        return {}
    if shutil.which("squeue") is None:
        return None
    which = f"--jobs={','.join(sorted(arrays))}" if arrays is not None else f"--user={os.getuid()}"
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T", which], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    if out.returncode != 0:
        return {} if arrays is not None and "Invalid job id" in out.stderr else None
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def queued_job_ids() -> set[str] | None:
    """Ids of this user's jobs and array tasks that will still run (pending, running, requeued); None without
    squeue."""
    states = job_states()
    return None if states is None else {job for job, state in states.items() if state in ALIVE}
