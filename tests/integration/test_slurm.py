"""The sweep lifecycle through a real SLURM, the one-node cluster that ``launchers/slurm-local.sh start`` brings up
(the README's test command and CI start it): arrays, preemption, scancel, failures, submit-and-exit.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import (
    ENV,
    PAUSED,
    SLURM,
    STEPS,
    TINY,
    cmd,
    job_paused,
    ledger,
    run,
    slurm,
    status,
    steps,
    stop_leftovers,
    wait_for,
)

pytestmark = [pytest.mark.slurm]  # the real one-node SLURM of launchers/slurm-local.sh

# --------------------------------------------------------------------------------------------- SLURM


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


@pytest.mark.slurm
@slurm
def test_slurm_preempted_job_resumes_same_wandb_run_without_gaps(tmp_path: Path) -> None:
    args = [*PAUSED, "logger=wandb", "logger.mode=offline", "sweep_name=preempt", *SLURM, "env=fake", "debug=smoke"]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "preempt"
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: job_paused(sweep_dir, run_dir.name), 240, "the job's pause")
    record = ledger(sweep_dir)[run_dir.name]
    wandb_id = json.loads((run_dir / "run.json").read_text())["wandb_id"]
    subprocess.run(["scancel", "--signal=USR2", record["job_id"]], check=True)  # what SLURM sends on preemption
    wait_for(lambda: ledger(sweep_dir)[run_dir.name]["status"] == "preempted", 60, "the preempted record")
    out, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, out[-3000:]
    record = ledger(sweep_dir)[run_dir.name]
    assert record["status"] == "completed" and record["attempts"] == 2
    assert [h[1] for h in record["history"]][-3:] == ["preempted", "running", "completed"]
    assert steps(run_dir) == STEPS
    assert json.loads((run_dir / "run.json").read_text())["wandb_id"] == wandb_id == record["wandb_id"]


@pytest.mark.slurm
@slurm
def test_slurm_scancel_is_recorded_and_rerun_resumes(tmp_path: Path) -> None:
    args = [*PAUSED, "sweep_name=cancel", *SLURM, *TINY]
    submit = run(tmp_path, *args, "hydra.launcher.wait=false")
    assert submit.returncode == 0 and "not waiting" in submit.stdout, submit.stdout[-2000:] + submit.stderr[-2000:]
    sweep_dir = tmp_path / "sweeps" / "cancel"
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: job_paused(sweep_dir, run_dir.name), 240, "the job's pause")
    subprocess.run(["scancel", ledger(sweep_dir)[run_dir.name]["job_id"]], check=True)
    wait_for(lambda: ledger(sweep_dir)[run_dir.name]["status"] == "cancelled", 60, "the cancelled record")
    assert "cancelled" in status(sweep_dir)

    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert ledger(sweep_dir)[run_dir.name]["status"] == "completed"
    assert steps(run_dir) == STEPS


def _waiting_launcher_with_a_paused_job(tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """A 1-point SLURM sweep whose launcher waits (``wait=true``) while its job is paused after a checkpoint."""
    args = [*PAUSED, f"sweep_name={name}", *SLURM, *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / name
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: job_paused(sweep_dir, run_dir.name), 240, "the job's pause")
    return launcher, sweep_dir, run_dir


@pytest.mark.slurm
@slurm
def test_slurm_requeue_is_recorded_and_the_waiting_launcher_follows_it_to_completion(tmp_path: Path) -> None:
    """``scontrol requeue`` SIGTERMs the job like ``scancel`` does, but the job comes back and resumes."""
    launcher, sweep_dir, run_dir = _waiting_launcher_with_a_paused_job(tmp_path, "requeue")
    subprocess.run(["scontrol", "requeue", ledger(sweep_dir)[run_dir.name]["job_id"]], check=True)
    wait_for(lambda: ledger(sweep_dir)[run_dir.name]["status"] == "requeued", 60, "the requeued record")
    assert "cancelled" not in status(sweep_dir)
    # The second attempt resumes after the checkpoint of iteration 4, so it does not pause again.
    wait_for(lambda: ledger(sweep_dir)[run_dir.name]["attempts"] == 2, 120, "the requeued job's second attempt")
    assert launcher.poll() is None  # the job's cancelled record during the requeue did not end the wait
    out, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, out[-3000:]
    record = ledger(sweep_dir)[run_dir.name]
    assert record["status"] == "completed" and record["attempts"] == 2
    assert [h[1] for h in record["history"]][-3:] == ["requeued", "running", "completed"]
    assert steps(run_dir) == STEPS


@pytest.mark.slurm
@slurm
def test_slurm_scancel_ends_the_waiting_launcher_with_the_point_cancelled(tmp_path: Path) -> None:
    """The same SIGTERM as a requeue, but the job does not come back: the waiting launcher stops at its end."""
    launcher, sweep_dir, run_dir = _waiting_launcher_with_a_paused_job(tmp_path, "waitcancel")
    subprocess.run(["scancel", ledger(sweep_dir)[run_dir.name]["job_id"]], check=True)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, out[-3000:]
    record = ledger(sweep_dir)[run_dir.name]
    assert record["status"] == "cancelled" and "requeued" not in [h[1] for h in record["history"]]


@pytest.mark.slurm
@slurm
def test_slurm_python_failure_is_failed_in_the_ledger(tmp_path: Path) -> None:
    proc = run(tmp_path, "debug.crash_at_iteration=2", "budget=smoke", "sweep_name=sfail", *SLURM, *TINY)
    assert proc.returncode == 1
    record = next(iter(ledger(tmp_path / "sweeps" / "sfail").values()))
    assert record["status"] == "failed" and "crashing on purpose" in record["error"]


@pytest.mark.slurm
@slurm
def test_slurm_grid_in_arrays_submit_and_exit_then_status_reports_completion(tmp_path: Path) -> None:
    """3 points at MaxArraySize 2 go out as two arrays; with wait=false the shell returns while they run."""
    t0 = time.time()
    proc = run(tmp_path, "seed=1,2,3", "budget=smoke", "sweep_name=later", "hydra.launcher.max_array_size=2",
               "hydra.launcher.wait=false", *SLURM, *TINY)  # fmt: skip
    assert proc.returncode == 0 and "rlsweep status" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    submitted_in = time.time() - t0
    assert proc.stdout.count("submitted") == 2
    sweep_dir = tmp_path / "sweeps" / "later"
    records = ledger(sweep_dir)
    assert len(records) == 3 and {r["status"] for r in records.values()} <= {"pending", "running", "completed"}
    assert all(r["job_id"] and r["launcher"] == "slurm" for r in records.values())
    assert len({r["job_id"].split("_")[0] for r in records.values()}) == 2

    def finished() -> str | None:
        table = status(sweep_dir)
        return table if "3 completed" in table else None

    table = wait_for(finished, 300, "the three points to finish")
    assert table.count("256/256 (100%)") == 3
    assert submitted_in < 60  # the shell came back while the jobs ran


@pytest.mark.slurm
@slurm
def test_a_point_queued_in_slurm_is_not_started_by_a_local_launch_of_the_same_sweep(tmp_path: Path) -> None:
    """``wait=false`` leaves a job pending (here until a begin time an hour away); the same sweep launched locally
    leaves that point alone and exits 3; once the job is cancelled, the local launch runs it."""
    common = [*TINY, "budget=smoke", "sweep_name=both"]
    submitted = run(tmp_path, *common, *SLURM, "hydra.launcher.wait=false",
                    "hydra.launcher.additional_parameters={begin:'now+3600'}")  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout[-2000:] + submitted.stderr[-2000:]
    sweep_dir = tmp_path / "sweeps" / "both"
    (record,) = ledger(sweep_dir).values()
    assert record["status"] == "pending" and record["job_id"]

    local = run(tmp_path, *common)
    assert local.returncode == 3, local.stdout[-2000:] + local.stderr[-2000:]
    assert "skipping 1 point(s): 1 queued in SLURM" in local.stdout
    (after,) = ledger(sweep_dir).values()
    assert after["attempts"] == 0 and after["launcher"] == "slurm" and after["job_id"] == record["job_id"]

    subprocess.run(["scancel", record["job_id"].split("_")[0]], check=True)
    wait_for(lambda: record["job_id"] not in (status_of_jobs() or ""), 60, "the cancelled job to leave the queue")
    again = run(tmp_path, *common)
    assert again.returncode == 0, again.stdout[-2000:]
    (done,) = ledger(sweep_dir).values()
    assert done["status"] == "completed" and done["attempts"] == 1 and done["launcher"] == "local"


def status_of_jobs() -> str:
    return subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True).stdout
