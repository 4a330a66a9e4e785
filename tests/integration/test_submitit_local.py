"""``hydra/launcher=submitit_local``: the SLURM launcher's path (pickled jobs, records with the job's id and log,
checkpoint-and-requeue on SIGUSR2, the reconciliation of a job that died without recording its end) on submitit's
local executor, proven on any machine, without SLURM. The same faults through the real SLURM are in test_slurm.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import ENV, PAUSED, STEPS, TINY, cmd, job_paused, ledger, run, status, steps, wait_for

pytestmark = [pytest.mark.e2e]

# One job at a time, so that the second point's start says the launcher throttled it; polled often (a local process).
LOCAL = ["hydra/launcher=submitit_local", "hydra.launcher.max_parallel=1", "hydra.launcher.poll_every=0.5"]


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    # A failed assertion must not leave a paused job: end the controllers (the job ids) and their tasks.
    for sweep_dir in (tmp_path / "sweeps").glob("*"):
        for record in ledger(sweep_dir).values():
            for pid in (record.get("job_id"), record.get("pid")):
                with contextlib.suppress(TypeError, ValueError, ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)


def _history(record: dict[str, object]) -> list[tuple[float, str]]:
    return [(float(t), str(s)) for t, s in record["history"]]  # type: ignore[attr-defined]


def test_submitit_local_runs_points_as_slurm_jobs_and_a_preempted_one_requeues_and_resumes_without_gaps(
    tmp_path: Path,
) -> None:
    # Two points: the first pauses at its checkpoint of iteration 4 until it is signalled, the second does not pause.
    args = [*PAUSED[:2], "debug.pause_at_iteration=4,0", "sweep_name=sl", *LOCAL, *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                                text=True)  # fmt: skip
    sweep_dir = tmp_path / "sweeps" / "sl"
    paused_id = "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    other_id = "ppo_rnd_a0-env_fake-debug.pause_at_iteration=0-s1"
    wait_for(lambda: job_paused(sweep_dir, paused_id), 240, "the job's pause")
    record = ledger(sweep_dir)[paused_id]
    # The job wrote its own record: the job id is its controller's pid, the log submitit's file for that job.
    assert record["launcher"] == "submitit_local" and record["job_id"] and record["pid"] != int(record["job_id"])
    assert record["log"] == str(sweep_dir.resolve() / ".submitit" / record["job_id"] / f"{record['job_id']}_0_log.out")
    # One slot: the second point waits for it, not started.
    assert ledger(sweep_dir)[other_id]["attempts"] == 0

    os.kill(record["pid"], signal.SIGUSR2)  # what SLURM sends on preemption; submitit's handler checkpoints, requeues
    out, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, out[-3000:]
    records = ledger(sweep_dir)
    paused, other = records[paused_id], records[other_id]
    assert paused["status"] == "completed" and paused["attempts"] == 2, paused
    assert [s for _, s in _history(paused)][-3:] == ["preempted", "running", "completed"]
    assert steps(sweep_dir / paused_id) == STEPS  # resumed from its checkpoint: no step lost, none twice
    # The requeue ran in the same job (its controller restarted the task), as SLURM requeues the same job id.
    assert paused["job_id"] == record["job_id"]
    assert other["status"] == "completed" and other["attempts"] == 1 and steps(sweep_dir / other_id) == STEPS
    # Throttled to max_parallel=1: the second point started only once the first had ended.
    first_end = max(t for t, s in _history(paused) if s == "completed")
    second_start = min(t for t, s in _history(other) if s == "running")
    assert second_start >= first_end
    assert "to submitit_local" in out


def test_a_submitit_local_job_dead_without_recording_its_end_is_cancelled_by_status_and_a_rerun_resumes_it(
    tmp_path: Path,
) -> None:
    args = [*PAUSED, "sweep_name=dead", *LOCAL, *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=ENV)  # fmt: skip
    sweep_dir = tmp_path / "sweeps" / "dead"
    run_id = "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: job_paused(sweep_dir, run_id), 240, "the job's pause")
    launcher.kill()  # the launcher dies; its job runs on, as a SLURM job outlives its launcher
    launcher.wait(timeout=60)
    record = ledger(sweep_dir)[run_id]
    # From another process: the controller still runs, so the job is alive and its record stands.
    assert "running" in status(sweep_dir) and ledger(sweep_dir)[run_id]["status"] == "running"

    # The job dies without a word (a dead node): its controller and its task, killed outright.
    os.kill(int(record["job_id"]), signal.SIGKILL)
    os.kill(record["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{record['pid']}").exists() or _zombie(record["pid"]), 60, "the task's end")
    # Nothing recorded its end; status, seeing the job gone (after the 5 s grace for fresh records), does.
    wait_for(lambda: "cancelled" in status(sweep_dir), 60, "status recording the job's end")
    record = ledger(sweep_dir)[run_id]
    assert record["status"] == "cancelled" and "left the queue unfinished" in record["error"], record

    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    record = ledger(sweep_dir)[run_id]
    assert record["status"] == "completed" and record["attempts"] == 2
    assert steps(sweep_dir / run_id) == STEPS


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    return True


def test_a_completed_point_continued_to_a_larger_budget_is_followed_to_its_new_end(tmp_path: Path) -> None:
    # A completed point given a larger budget trains again, and its record says so from the launch on (pending,
    # "continued to N agent steps"). Before, it said completed until the job started: on SLURM, whose jobs wait held,
    # the waiting launcher took it for done at once and never recorded the new job (test_tune_faults.py's SLURM tune
    # continues trials to a second rung that way); the local executor starts the job at once, so here only the record
    # of the continuation told the difference.
    args = ["sweep_name=more", "budget.total_steps=128", *LOCAL, *TINY]
    first = run(tmp_path, *args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    sweep_dir = tmp_path / "sweeps" / "more"
    (run_id,) = ledger(sweep_dir)
    first_job = ledger(sweep_dir)[run_id]["job_id"]
    done = steps(sweep_dir / run_id)

    more = run(tmp_path, *args, f"budget.total_steps={2 * done[-1]}", "resume=continue")
    assert more.returncode == 0, more.stdout[-2000:] + more.stderr[-2000:]
    record = ledger(sweep_dir)[run_id]
    assert record["status"] == "completed" and record["global_step"] == 2 * done[-1], record
    assert record["attempts"] == 2 and record["job_id"] != first_job
    assert [s for _, s in _history(record)][-3:] == ["completed", "running", "completed"]
    assert record["changes"][-1][1] == f"continued to {2 * done[-1]} agent steps"
    assert steps(sweep_dir / run_id) == [*done, *(done[-1] + s for s in done)]  # continued: no gap, none twice


def test_ctrl_c_stops_a_waiting_launcher_started_with_sigint_ignored_and_its_job_runs_on(tmp_path: Path) -> None:
    # A launcher started in the background of a script inherits SIGINT ignored (Python then installs no
    # KeyboardInterrupt); it stops on one anyway, as the local launcher does, and leaves its job running.
    args = [*PAUSED, "sweep_name=bg", *LOCAL, *TINY]
    # Its output to a file, not a pipe: the job it leaves running holds the launcher's stdout open.
    output = tmp_path / "launcher.txt"
    with output.open("w") as sink:
        launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, env=ENV,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    sweep_dir = tmp_path / "sweeps" / "bg"
    run_id = "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: job_paused(sweep_dir, run_id), 240, "the job's pause")
    launcher.send_signal(signal.SIGINT)
    launcher.wait(timeout=120)  # a bound, not a race: it stops at its next turn, within a poll
    out = output.read_text()
    assert launcher.returncode == 130 and "stopped; rerun the same command to resume" in out, out[-2000:]
    record = ledger(sweep_dir)[run_id]
    assert record["status"] == "running" and Path(f"/proc/{record['pid']}").exists()  # the job runs on
