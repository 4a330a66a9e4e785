"""The sweep lifecycle through real processes with the local launcher.

Every scenario runs ``python sweep.py -m ...`` as a user would, then reads the runs' records, their metrics and
``rlsweep status``; a run that a test kills, cancels or interrupts is paused at a known checkpoint first
(``debug.pause_at_iteration``), so no test races the end of a run.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import ENV, PAUSED, STEPS, TINY, cmd, ledger, paused, run, status, steps, stop_leftovers, wait_for

pytestmark = [pytest.mark.e2e]  # the real command line: processes, signals, a rerun

# --------------------------------------------------------------------------------------------- local


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


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
