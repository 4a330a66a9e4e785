"""The sweep lifecycle through real processes: the local launcher, and SLURM started by launchers/slurm-local.sh.

Every scenario runs ``python sweep.py -m ... hydra/launcher=...`` as a user would, then reads the sweep ledger,
the runs' metrics and ``rlsweep status``. The SLURM tests need the single-node cluster that
``launchers/slurm-local.sh start`` brings up (the README's test command and CI start it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["env=fake", "debug=smoke", "logger=none"]
ENV = {**os.environ, "WANDB_SILENT": "true"}


def cmd(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), "-m", *args]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd(*args), cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600)


def ledger(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The sweep's run records (``<run>/run.json``) by run id."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/run.json")}


def steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["global_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def paused(log: Path) -> bool:
    """The run checkpointed iteration ``debug.pause_at_iteration`` and now waits to be stopped (it says so)."""
    return log.exists() and "(debug.pause_at_iteration): waiting to be stopped" in log.read_text(errors="ignore")


def job_paused(sweep_dir: Path, run_id: str) -> bool:
    """``paused`` for a SLURM job: its log is where the record says, once the launcher has written it."""
    log = ledger(sweep_dir).get(run_id, {}).get("log")
    return bool(log) and paused(Path(log))


# 10 iterations of 64 agent steps; a run pauses after its checkpoint of iteration 4 until it is stopped from outside,
# so a test never races the end of the run it kills.
PAUSED = ["budget.total_steps=640", "budget.checkpoint_every=2", "debug.pause_at_iteration=4"]
STEPS = list(range(64, 640 + 1, 64))


def status(sweep_dir: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "rlsweep.launching.cli", "status", str(sweep_dir)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


# --------------------------------------------------------------------------------------------- local


def test_local_grid_runs_in_parallel_skips_completed_and_runs_only_new_points(tmp_path: Path) -> None:
    args = ["motivation=none,rnd", "budget=smoke", "sweep_name=grid", "hydra.launcher.max_parallel=2", *TINY]
    first = run(tmp_path, *args, "seed=1,2")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "2 at a time" in first.stdout
    sweep_dir = tmp_path / "sweeps" / "grid"
    records = ledger(sweep_dir)
    assert len(records) == 4 and {r["status"] for r in records.values()} == {"completed"}

    again = run(tmp_path, *args, "seed=1,2")
    assert again.returncode == 0 and "skipping 4 point(s): 4 completed" in again.stdout
    extended = run(tmp_path, *args, "seed=1,2,3")
    assert extended.returncode == 0 and "skipping 4 point(s): 4 completed" in extended.stdout
    records = ledger(sweep_dir)
    assert len(records) == 6
    assert sorted(r["attempts"] for r in records.values()) == [1] * 6  # nothing ran twice
    table = status(sweep_dir)
    assert "6 completed" in table and "256/256 (100%)" in table


def test_local_crash_is_recorded_others_finish_and_only_failed_reruns(tmp_path: Path) -> None:
    args = ["debug.crash_at_iteration=0,2", "budget=smoke", "sweep_name=crash", "hydra.launcher.max_parallel=2", *TINY]
    proc = run(tmp_path, *args)
    assert proc.returncode == 1
    sweep_dir = tmp_path / "sweeps" / "crash"
    records = ledger(sweep_dir)
    crashed = next(r for r in records.values() if "crash_at_iteration=2" in r["run_id"])
    fine = next(r for r in records.values() if "crash_at_iteration=0" in r["run_id"])
    assert crashed["status"] == "failed" and "crashing on purpose" in crashed["error"]
    assert fine["status"] == "completed"
    assert "Traceback" in (sweep_dir / crashed["run_id"] / "log.txt").read_text()
    assert f"FAILED {crashed['run_id']}" in proc.stdout

    retry = run(tmp_path, *args, "hydra.launcher.only=failed")
    assert retry.returncode == 1 and "skipping 1 point(s): 1 completed" in retry.stdout
    records = ledger(sweep_dir)
    assert records[crashed["run_id"]]["attempts"] == 2 and records[fine["run_id"]]["attempts"] == 1


def test_local_sigkill_midway_then_rerun_resumes_without_losing_steps(tmp_path: Path) -> None:
    args = ["model=A", "seed=1", "budget.total_steps=640", "budget.checkpoint_every=2", "debug.pause_at_iteration=4,0",
            "sweep_name=kill", "hydra.launcher.max_parallel=2", *TINY]  # fmt: skip
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "kill"
    victim = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    other = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=0-s1"
    wait_for(lambda: paused(victim / "log.txt"), 180, "the first point to pause after its checkpoint")
    pid = ledger(sweep_dir)[victim.name]["pid"]
    os.kill(pid, signal.SIGKILL)
    out, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 1, out[-2000:]
    record = ledger(sweep_dir)[victim.name]
    assert record["status"] == "failed" and "killed by signal 9" in record["error"]

    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert "resumed at iteration 4, step 256" in (victim / "log.txt").read_text()
    for run_dir in (victim, other):
        assert steps(run_dir) == STEPS
    assert ledger(sweep_dir)[victim.name]["attempts"] == 2 and ledger(sweep_dir)[other.name]["attempts"] == 1


def test_local_ctrl_c_stops_and_records_the_points_then_rerun_resumes(tmp_path: Path) -> None:
    """SIGINT to the launcher (a Ctrl-C): it stops its running points, each records itself as cancelled, the
    sweep exits 130; nothing is left running, and the rerun resumes both from their checkpoints."""
    args = ["seed=1,2", *PAUSED, "sweep_name=ctrlc", "hydra.launcher.max_parallel=2", *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "ctrlc"
    runs = [sweep_dir / f"ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s{i}" for i in (1, 2)]
    wait_for(lambda: all(paused(r / "log.txt") for r in runs), 180, "both points to pause after a checkpoint")
    pids = [ledger(sweep_dir)[r.name]["pid"] for r in runs]
    launcher.send_signal(signal.SIGINT)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, out[-2000:]
    records = ledger(sweep_dir)
    assert [records[r.name]["status"] for r in runs] == ["cancelled", "cancelled"], out[-2000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "cancelled" in status(sweep_dir)

    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    for r in runs:
        assert steps(r) == STEPS
        assert ledger(sweep_dir)[r.name]["attempts"] == 2


def test_local_gpu_slots_share_each_gpu_between_runs_per_gpu(tmp_path: Path) -> None:
    """On the CPU the runs cannot use the GPUs, but the assignment the launcher makes is the real one."""
    args = ["seed=1,2,3,4", "budget=smoke", "sweep_name=gpus", "hydra.launcher.gpus=[0,1]",
            "hydra.launcher.runs_per_gpu=2", "device=cpu", *TINY]  # fmt: skip
    proc = run(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "4 at a time on GPUs [0, 1] (2 per GPU)" in proc.stdout
    assert sorted(r["gpu"] for r in ledger(tmp_path / "sweeps" / "gpus").values()) == [0, 0, 1, 1]


# --------------------------------------------------------------------------------------------- SLURM


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split())


slurm = pytest.mark.skipif(
    not _slurm_up(), reason="no SLURM cluster is up: start the local one with `launchers/slurm-local.sh start`"
)
SLURM = ["hydra/launcher=slurm", "hydra.launcher.profile=local", "hydra.launcher.poll_every=1"]


@pytest.mark.slurm
@slurm
def test_slurm_grid_completes(tmp_path: Path) -> None:
    proc = run(tmp_path, "motivation=none,rnd", "seed=1,2", "budget=smoke", "sweep_name=sgrid",
               "hydra.launcher.max_array_size=3", *SLURM, *TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = ledger(tmp_path / "sweeps" / "sgrid")
    assert len(records) == 4
    assert {r["status"] for r in records.values()} == {"completed"}
    assert all(r["job_id"] and r["launcher"] == "slurm" for r in records.values())
    arrays = sorted({r["job_id"].split("_")[0] for r in records.values()})
    assert len(arrays) == 2 and proc.stdout.count("submitted") == 2  # 4 points at MaxArraySize 3: two arrays


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


@pytest.mark.slurm
@slurm
def test_slurm_python_failure_is_failed_in_the_ledger(tmp_path: Path) -> None:
    proc = run(tmp_path, "debug.crash_at_iteration=2", "budget=smoke", "sweep_name=sfail", *SLURM, *TINY)
    assert proc.returncode == 1
    record = next(iter(ledger(tmp_path / "sweeps" / "sfail").values()))
    assert record["status"] == "failed" and "crashing on purpose" in record["error"]


@pytest.mark.slurm
@slurm
def test_slurm_submit_and_exit_then_status_reports_completion(tmp_path: Path) -> None:
    t0 = time.time()
    proc = run(tmp_path, "seed=1,2", "budget=smoke", "sweep_name=later", "hydra.launcher.wait=false", *SLURM, *TINY)
    assert proc.returncode == 0 and "rlsweep status" in proc.stdout
    submitted_in = time.time() - t0
    sweep_dir = tmp_path / "sweeps" / "later"
    assert {r["status"] for r in ledger(sweep_dir).values()} <= {"pending", "running"}

    def finished() -> str | None:
        table = status(sweep_dir)
        return table if "2 completed" in table else None

    table = wait_for(finished, 300, "both points to finish")
    assert "256/256 (100%)" in table
    assert submitted_in < 60  # the shell came back while the jobs ran
