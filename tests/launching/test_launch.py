"""The launch path in this process: plan once, prepare (config.yaml and record), run_point, status.

Nothing here starts a process: what a process start or a signal adds is in tests/integration/test_launchers.py.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from inline import TINY, metrics, record, run_inline, sweep_inline

from rlsweep.cli.sweep import main
from rlsweep.config.files import load_config
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.job import run_point
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import GROUPS, plan
from rlsweep.launching.points import prepare, status_table
from rlsweep.rundir.lock import PointLock
from rlsweep.rundir.record import RunRecord


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep_name=../../x"], "Invalid value for sweep_name: '../../x' (a name, not a path"),
        (["name=a/b"], "Invalid value for name: 'a/b' (a name, not a path"),
        ([f"name={'x' * 300}"], "Invalid value for name: 'xxxxxxxxxx"),  # a directory name holds 255 bytes
        (["env.id=procgen-bigfish"], "distribution_mode: 'exploration' with env.id='procgen-bigfish' (allowed: easy"),
        (["hydra.launcher.max_parallel=-1"], "Invalid value for hydra.launcher.max_parallel: -1 (must be >= 0"),
        (["hydra.launcher.runs_per_gpu=0"], "Invalid value for hydra.launcher.runs_per_gpu: 0 (must be >= 1)"),
        (["hydra.launcher.gpus=[0,0]"], "Invalid value for hydra.launcher.gpus: [0, 0] (distinct GPU indices"),
        (["hydra.launcher.max_parallel=abc"], "Invalid value for hydra.launcher.max_parallel: 'abc'"),
        (["hydra.launcher.only=some"], "Invalid value for hydra.launcher.only: 'some' (allowed: unfinished, failed)"),
        (["hydra.launcher.nope=1"], "Unknown key hydra.launcher.nope for hydra/launcher=local; allowed: max_parallel"),
        (["hydra/launcher=pbs"], "Unknown option hydra/launcher=pbs; allowed: local, slurm, submitit_local"),
        (
            ["hydra/launcher=submitit_local", "hydra.launcher.partition=gpu"],
            "Unknown key hydra.launcher.partition for hydra/launcher=submitit_local; allowed: max_parallel",
        ),
        (
            ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=3", "hydra.launcher.signal_delay_s=90"],
            "hydra.launcher.signal_delay_s: 90 with hydra.launcher.timeout_min=3 (allowed: at most 60",
        ),
        (["hydra/launcher=slurm", "hydra.launcher.profile=nope"], "Invalid value for hydra.launcher.profile: 'nope'"),
        (["hydra/launcher=slurm", "hydra.launcher.timeout_min=0"], "hydra.launcher.timeout_min: 0 (must be >= 1"),
        (
            ["hydra/launcher=slurm", "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=120"],
            "Invalid value for hydra.launcher.signal_delay_s: 120 with hydra.launcher.timeout_min=2 (allowed: at most",
        ),
        (
            ["hydra/launcher=slurm", "hydra.launcher.timeout_min=1"],
            "signal_delay_s: 120 with hydra.launcher.timeout_min",
        ),
        (["hydra.launcher.max_parallel=1,2"], "launcher settings cannot be swept"),
        (["hydra.job.chdir=true"], "Unknown key hydra.job.chdir; allowed Hydra keys: hydra/launcher"),
        # seeds_per_process: what several seeds in one process can train
        (["seeds_per_process=0"], "Invalid value for seeds_per_process: 0 (must be >= 1)"),
        (["seeds_per_process=-2"], "Invalid value for seeds_per_process: -2 (must be >= 1)"),
        (["seeds_per_process=two"], "Invalid value for seeds_per_process: 'two' (an integer is required)"),
        (
            ["seeds_per_process=2", "perf.compile=default"],
            "Invalid value for seeds_per_process: 2 with perf.compile='default' (allowed: 1; more only with "
            "perf.compile=none)",
        ),
        (["seeds_per_process=3", "perf.compile=reduce-overhead"], "with perf.compile='reduce-overhead' (allowed: 1"),
        # one bad point of the grid stops all of it
        (["seeds_per_process=2", "perf.compile=none,default"], "seeds_per_process: 2 with perf.compile='default'"),
    ],
)
def test_bad_launch_settings_and_names_stop_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-m", "seed=1,2", *TINY, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlsweep: error: ") and message in err and "\n" not in err, err
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_signal_delay_that_leaves_no_time_to_checkpoint_submits_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SLURM would signal the job before its first checkpoint and requeue it at step 0 until cancelled."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "scontrol", "squeue"):  # any call to SLURM leaves a trace instead of reaching a cluster
        (bin_dir / tool).write_text(f"#!/bin/sh\necho {tool} >> {tmp_path / 'calls'}\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["hydra/launcher=slurm", "hydra.launcher.profile=local", "hydra.launcher.timeout_min=5"]
    assert main(["-m", "seed=1,2", *TINY, *args, "hydra.launcher.signal_delay_s=300"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rlsweep: error: Invalid value for hydra.launcher.signal_delay_s: 300 with hydra.launcher.timeout_min=5 "
        "(allowed: at most 180; the signal must leave the job 120 s of its 300 s to start and checkpoint, as SLURM "
        "may send it up to 60 s early)"
    )
    assert not (tmp_path / "calls").exists() and not any(work.iterdir())


def test_a_bad_profile_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "cluster.yaml"
    profile.write_text("partition: gpu\ncpus_per_task: many\n")
    assert main(["-m", "seed=1", *TINY, "hydra/launcher=slurm", f"hydra.launcher.profile={profile}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"Invalid cluster profile {profile}" in err and "cpus_per_task" in err and "\n" not in err
    profile.write_text("partiton: gpu\n")
    assert main(["-m", "seed=1", *TINY, "hydra/launcher=slurm", f"hydra.launcher.profile={profile}"]) == 2
    assert "unknown key 'partiton'" in capsys.readouterr().err


def test_the_job_runs_what_config_yaml_says_and_the_record_tells_its_life(tmp_path: Path) -> None:
    """run_point loads config.yaml and nothing else: an edit of the file is what runs."""
    p = plan(quote_group_values([*TINY, "model=B"], GROUPS), multirun=False)
    p.out_dir = tmp_path / "runs"
    (point,) = p.points
    assert prepare(p, "inline") == [point]
    run_dir = p.run_dir(point)
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written == point.config and written["model"]["name"] == "B"
    written["budget"]["total_steps"] = 128
    (run_dir / "config.yaml").write_text(yaml.safe_dump(written))
    assert load_config(run_dir).budget.total_steps == 128

    before = record(run_dir)
    assert before["status"] == "pending" and before["attempts"] == 0 and before["choices"]["model"] == "B"
    run_point(run_dir)
    after = RunRecord.read(run_dir)
    assert [s for _, s in after.history] == ["running", "completed"] and after.attempts == 1
    assert after.global_step == 128 and [r["global_step"] for r in metrics(run_dir)] == [64, 128]
    assert after.final["global_step"] == 128 and after.pid == os.getpid() and after.host == socket.gethostname()


def test_a_crash_is_recorded_as_failed_with_where_it_happened(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_inline(tmp_path, *TINY, "debug.crash_at_iteration=2", "name=crash")
    failed = RunRecord.read(tmp_path / "runs" / "crash-s1")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("RuntimeError: debug.crash_at_iteration=2") and "loop.py" in failed.error


def test_prepare_skips_completed_and_live_points_and_only_failed_reruns_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = sweep_inline(tmp_path, "seed=1,2,3", *TINY, sweep_name="sel")
    ids = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert [record(sweep_dir / i)["status"] for i in ids] == ["completed"] * 3
    RunRecord.read(sweep_dir / ids[0]).update(status="failed", error="boom")
    RunRecord.read(sweep_dir / ids[1]).update(status="running", host=socket.gethostname(), pid=os.getpid())
    live = PointLock(sweep_dir / ids[1])  # held by this live process: the point runs elsewhere
    live.acquire()
    config_mtime = (sweep_dir / ids[2] / "config.yaml").stat().st_mtime_ns

    def todo(*extra: str) -> list[str]:
        p = plan(quote_group_values(["seed=1,2,3,4", *TINY, "sweep_name=sel", *extra], GROUPS), multirun=True)
        p.out_dir = sweep_dir
        return [pt.run_id for pt in prepare(p, "local")]

    assert todo() == [ids[0], ids[2].replace("-s3", "-s4")]  # failed reruns, the live one is left, s4 is new
    assert "skipping 2 point(s): 1 completed, 1 still running" in capsys.readouterr().out
    assert (sweep_dir / ids[2] / "config.yaml").stat().st_mtime_ns == config_mtime  # a completed run is not touched
    assert todo("hydra.launcher.only=failed") == [ids[0]]
    live.release()
    assert todo() == [ids[0], ids[1], ids[2].replace("-s3", "-s4")]  # released: the record's "running" was stale


def test_status_table_fits_120_columns_shows_eta_stopped_and_failures(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, "seed=1,2", *TINY, "name=a_configuration_name_long_enough_to_be_cut_x",
                             sweep_name="st")  # fmt: skip
    first, second = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    # A run whose process died without recording it (SIGKILL): its record still says running.
    RunRecord.read(first).update(status="running", host=socket.gethostname(), pid=2**22 + 7, global_step=128)
    RunRecord.read(second).update(status="failed", error="ValueError: " + "x" * 300)
    with (first / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"global_step": 128, "perf/sps": 64.0, "explore/cells": 3}) + "\n")
    Ledger(sweep_dir).record_launch("local", 2)
    table = status_table(Ledger(sweep_dir))
    assert max(len(line) for line in table.splitlines()) <= 120, table
    assert "stopped" in table and "1 failed, 1 stopped" in table and f"FAILED {second.name}" in table
    assert "…" in table  # the long run id and the long error are cut, not wrapped


def test_eta_from_the_running_points_throughput(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, "seed=1,2", *TINY, sweep_name="eta")
    first, second = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    for run_dir in (first, second):
        RunRecord.read(run_dir).update(status="running", host="another-host", pid=1, global_step=0, total_steps=4800)
        (run_dir / "metrics.jsonl").write_text(json.dumps({"global_step": 3200, "perf/sps": 32.0}) + "\n")
        # alive by its heartbeat: a lock on another host, renewed just now
        (run_dir / ".lock-1.json").write_text(json.dumps({"host": "another-host", "pid": 1}))
    # 2 x 1,600 steps left at 2 x 32 steps/s: 50 s
    assert "2 running; ETA 50 s at 64 steps/s" in status_table(Ledger(sweep_dir))


@pytest.mark.e2e
def test_the_job_entry_point_imports_no_hydra() -> None:
    """A job loads its resolved config.yaml; composing is the planner's business alone."""
    import subprocess
    import sys

    code = "import sys, rlsweep.launching.job; print(sorted(m for m in sys.modules if m.split('.')[0] == 'hydra'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def crashed_after_two_good_iterations(tmp_path: Path, name: str, **config_changes: dict[str, Any]) -> Path:
    """A run checkpointed at iterations 1 and 2 that crashed in iteration 3, its config then set to go on, with
    ``config_changes`` (section -> keys) on top; its run directory."""
    p = plan(quote_group_values([*TINY, f"name={name}", "budget.checkpoint_every=1", "debug.crash_at_iteration=3"],
                                GROUPS), multirun=False)  # fmt: skip
    p.out_dir = tmp_path / "runs"
    (point,) = p.points
    prepare(p, "inline")
    run_dir = p.run_dir(point)
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_point(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["debug"]["crash_at_iteration"] = 0
    for section, changes in config_changes.items():
        config[section].update(changes)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_dir


def test_a_diverged_run_stops_in_one_line_and_keeps_its_last_good_checkpoint(tmp_path: Path) -> None:
    """Two good iterations (checkpointed), then the same run with a loss weight that makes the loss infinite."""
    # (the learning rate would not do: Adam's state restores its own)
    run_dir = crashed_after_two_good_iterations(tmp_path, "div", ppo={"vf_coef": float("inf")})
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["resume"] = "continue"  # a changed training config resumes only when told to
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))

    from rlsweep.launching.job import run_point_reporting
    from rlsweep.training.checkpoint import load_checkpoint

    assert run_point_reporting(run_dir) == 1
    failed = RunRecord.read(run_dir)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("DivergenceError: non-finite ") and "at iteration 3" in failed.error
    assert "loss/total" in failed.error and failed.error.endswith("its last checkpoint (checkpoint.pt) is kept")
    saved = load_checkpoint(run_dir)
    assert saved is not None and saved["iteration"] == 2  # the diverged iteration was never saved
    assert [r["global_step"] for r in metrics(run_dir)] == [64, 128]  # nor logged


def test_a_run_that_diverges_before_its_first_checkpoint_says_it_has_none(tmp_path: Path) -> None:
    p = plan(quote_group_values([*TINY, "name=early", "ppo.vf_coef=inf"], GROUPS), multirun=False)
    p.out_dir = tmp_path / "runs"
    (point,) = p.points
    prepare(p, "inline")

    from rlsweep.launching.job import run_point_reporting

    assert run_point_reporting(p.run_dir(point)) == 1
    error = RunRecord.read(p.run_dir(point)).error or ""
    assert error.startswith("DivergenceError: non-finite ") and "at iteration 1" in error
    assert error.endswith("it has no checkpoint yet (a rerun starts from step 0)") and "is kept" not in error
    assert not (p.run_dir(point) / "checkpoint.pt").exists()


def test_a_run_resumed_from_a_non_finite_policy_stops_in_one_line_too(tmp_path: Path) -> None:
    """The policy's logits are NaN from the first step after the resume: sampling goes on (CUDA's sampler would
    abort the process on them), and the update after it reports the divergence as above, not torch's check."""
    import torch

    run_dir = crashed_after_two_good_iterations(tmp_path, "nan")
    checkpoint = run_dir / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    for name, weight in state["policy"].items():
        state["policy"][name] = torch.full_like(weight, float("nan"))
    torch.save(state, checkpoint)

    from rlsweep.launching.job import run_point_reporting

    assert run_point_reporting(run_dir) == 1
    failed = RunRecord.read(run_dir)
    assert failed.status == "failed" and (failed.error or "").startswith("DivergenceError: non-finite ")
    assert "at iteration 3" in (failed.error or "") and "\n" not in (failed.error or "")
    assert [r["global_step"] for r in metrics(run_dir)] == [64, 128]
