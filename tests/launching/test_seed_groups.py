"""``seeds_per_process=k``: which points share a process, what is refused, the dry-run table, and the launchers'
side of a job that holds several points (its command, its log, its end, its preemption).

The grouping and the records are tested without training; ``test_two_seeds_train_in_one_process`` and the SLURM
tests (array task, preemption) run the real command line end to end on the synthetic env. Training several seeds
in one process itself is tests/integration/test_seeds_per_process.py's.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import submitit
from inline import TINY
from procs import (
    ENV,
    PAUSED,
    SLURM,
    STEPS,
    cmd,
    job_paused,
    ledger,
    paused,
    run,
    slurm,
    steps,
    stop_leftovers,
    wait_for,
)

from rlsweep.cli.sweep import main
from rlsweep.config.fingerprint import fingerprint
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching import local
from rlsweep.launching.plan import GROUPS, Plan, Point, plan, seed_groups, sweep_name_for
from rlsweep.launching.points import prepare, process_groups
from rlsweep.launching.slurm import PointJob
from rlsweep.rundir.record import RunRecord


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


# --------------------------------------------------------------------------------------------- grouping


def _point(index: int, seed: int, k: int, lr: float = 1e-4) -> Point:
    config = {"seed": seed, "seeds_per_process": k, "ppo": {"learning_rate": lr}, "name": "", "sweep_name": "g"}
    return Point(index, [f"seed={seed}"], f"lr{lr:g}-s{seed}", "lr", {}, config)


def _ids(groups: list[list[Point]]) -> list[list[str]]:
    return [[p.run_id.replace("lr0.0001-", "a").replace("lr0.0003-", "b") for p in g] for g in groups]


def test_seeds_of_one_configuration_share_a_process_in_chunks_of_k() -> None:
    assert _ids(seed_groups([_point(i, s, 2) for i, s in enumerate([1, 2, 3, 4, 5])])) == [
        ["as1", "as2"],
        ["as3", "as4"],
        ["as5"],
    ]
    assert _ids(seed_groups([_point(i, s, 3) for i, s in enumerate([1, 2, 3, 4])])) == [["as1", "as2", "as3"], ["as4"]]


def test_different_configurations_never_share_a_process() -> None:
    points = [_point(0, 1, 2), _point(1, 1, 2, lr=3e-4), _point(2, 2, 2), _point(3, 2, 2, lr=3e-4)]
    assert _ids(seed_groups(points)) == [["as1", "as2"], ["bs1", "bs2"]]


def test_seeds_at_different_progress_do_not_share_a_process() -> None:
    points = [_point(i, s, 4) for i, s in enumerate([1, 2, 3, 4])]
    steps = {"lr0.0001-s2": 128, "lr0.0001-s4": 128}  # s1 and s3 are new (0), s2 and s4 resume at step 128
    assert _ids(seed_groups(points, steps)) == [["as1", "as3"], ["as2", "as4"]]


def test_one_seed_per_process_is_one_job_per_point_in_the_order_given() -> None:
    points = [_point(0, 3, 1), _point(1, 1, 1), _point(2, 1, 1, lr=3e-4), _point(3, 2, 1)]
    assert seed_groups(points) == [[p] for p in points]
    assert seed_groups(points, {"lr0.0001-s1": 64}) == [[p] for p in points]


def test_chunks_take_seeds_in_seed_order_and_jobs_come_in_the_order_of_their_first_point() -> None:
    # a's seeds sorted: s1 (given 4th), s2 (6th), s3 (1st), s4 (5th), s5 (3rd); b's s1 is given 2nd
    points = [_point(0, 3, 2), _point(1, 1, 2, lr=3e-4), _point(2, 5, 2), _point(3, 1, 2), _point(4, 4, 2),
              _point(5, 2, 2)]  # fmt: skip
    assert _ids(seed_groups(points)) == [["as3", "as4"], ["bs1"], ["as5"], ["as1", "as2"]]


def _plan(tmp_path: Path, *overrides: str) -> Plan:
    p = plan(quote_group_values([*TINY, *overrides], GROUPS), multirun=True)
    p.out_dir = tmp_path / "sweeps" / "g"
    return p


def test_a_planned_grid_groups_by_configuration_and_the_records_progress(tmp_path: Path) -> None:
    p = _plan(tmp_path, "seed=1,2,3", "motivation=none,rnd", "seeds_per_process=2", "sweep_name=g")
    todo = prepare(p, "local")
    groups = [[(pt.choices["motivation"], pt.seed) for pt in g] for g in process_groups(p, todo)]
    assert groups == [[("none", 1), ("none", 2)], [("rnd", 1), ("rnd", 2)], [("none", 3)], [("rnd", 3)]]
    # rnd's seed 2 has progress (a resumed run): it no longer starts with seed 1, whose record is at 0
    RunRecord.read(p.run_dir(todo[3])).update(global_step=128)
    assert (todo[3].choices["motivation"], todo[3].seed) == ("rnd", 2)
    groups = [[(pt.choices["motivation"], pt.seed) for pt in g] for g in process_groups(p, todo)]
    assert groups == [[("none", 1), ("none", 2)], [("rnd", 1), ("rnd", 3)], [("rnd", 2)], [("none", 3)]]
    k1 = _plan(tmp_path, "seed=1,2,3", "motivation=none,rnd")
    assert process_groups(k1, k1.points) == [[pt] for pt in k1.points]


def test_seeds_per_process_names_no_run_no_sweep_and_no_fingerprint(tmp_path: Path) -> None:
    one = _plan(tmp_path, "seed=1,2")
    two = _plan(tmp_path, "seed=1,2", "seeds_per_process=2")
    assert [pt.run_id for pt in one.points] == [pt.run_id for pt in two.points]
    assert [fingerprint(pt.config) for pt in one.points] == [fingerprint(pt.config) for pt in two.points]
    assert sweep_name_for(["seed=1,2"]) == sweep_name_for(["seed=1,2", "seeds_per_process=2"])


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.e2e
def test_the_command_line_refuses_it_in_one_line_with_exit_status_2(tmp_path: Path) -> None:
    out = run(tmp_path, "seed=1,2", "seeds_per_process=2", "perf.compile=default", *TINY)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == (
        "rlsweep: error: Invalid value for seeds_per_process: 2 with perf.compile='default' (allowed: 1; more only "
        "with perf.compile=none)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["motivation=none,rnd", "seeds_per_process=2"],
        ["perf.compile=none", "seeds_per_process=3"],
        ["motivation=snd_v,snd_vic,snd_std", "seeds_per_process=1"],
        ["motivation=snd_v,snd_vic,snd_std", "seeds_per_process=2"],
        ["perf.compile=default", "seeds_per_process=1"],
    ],
)
def test_supported_combinations_plan(args: list[str]) -> None:
    assert plan(quote_group_values([*TINY, "seed=1,2", *args], GROUPS), multirun=True).points


# --------------------------------------------------------------------------------------------- dry run


def _rows(out: str) -> list[dict[str, str]]:
    lines = out.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split(), strict=True)) for line in lines[1:] if line[:1].isdigit()]


def test_the_dry_run_shows_the_process_of_each_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["-m", "seed=1,2,3", "motivation=none,rnd", *TINY, "dry_run=true"]
    assert main([*args, "seeds_per_process=2"]) == 0
    out = capsys.readouterr().out
    process = {(r["motivation"], r["run"].rsplit("-s", 1)[1]): r["process"] for r in _rows(out)}
    assert process[("none", "1")] == process[("none", "2")] != process[("none", "3")]
    assert process[("rnd", "1")] == process[("rnd", "2")] != process[("rnd", "3")]
    assert len(set(process.values())) == 4 and process[("none", "1")] != process[("rnd", "1")]
    assert "dry run: 6 job(s) in 4 process(es)," in out and "nothing was started" in out
    assert not any(tmp_path.iterdir())

    assert main(args) == 0  # one seed per process: the table as before, no process column
    out = capsys.readouterr().out
    assert "process" not in out and "dry run: 6 job(s), " in out


# --------------------------------------------------------------------------------------------- local launcher


def _prepared(tmp_path: Path, seeds: str = "1,2") -> tuple[Plan, list[Point]]:
    p = _plan(tmp_path, f"seed={seeds}", "seeds_per_process=2", "sweep_name=g")
    return p, prepare(p, "local")


def _dies_by(monkeypatch: pytest.MonkeyPatch, sig: int) -> list[list[str]]:
    """The local launcher's child, replaced by one that gets ``sig`` at once; returns the commands it was given."""
    commands: list[list[str]] = []
    real = subprocess.Popen

    def popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        commands.append(cmd)
        code = f"import os; os.kill(os.getpid(), {int(sig)}); import time; time.sleep(60)"
        return real([sys.executable, "-c", code], **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", popen)
    return commands


@pytest.mark.e2e
def test_a_group_is_one_process_whose_log_every_member_leads_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    p, todo = _prepared(tmp_path)
    (group,) = process_groups(p, todo)
    first, second = (p.run_dir(pt) for pt in group)
    commands = _dies_by(monkeypatch, signal.SIGKILL)
    r = local._start(group, p.out_dir, 0, [None], 1)
    local._finished(r, r.proc.wait(timeout=60))
    assert commands == [[sys.executable, "-m", "rlsweep.launching.job", str(first), str(second)]]
    out = capsys.readouterr().out
    assert f"start {group[0].run_id}, {group[1].run_id} in one process" in out
    assert f"{group[0].run_id}: failed" in out and f"{group[1].run_id}: failed" in out
    for run_dir in (first, second):
        record = RunRecord.read(run_dir)
        assert record.log == str(first / "log.txt") and record.log_path == first / "log.txt"
        assert record.status == "failed" and record.error == f"process killed by signal 9; see {first / 'log.txt'}"
    assert "rlsweep.launching.job " + f"{first} {second}" in (first / "log.txt").read_text()
    assert (
        f"trained in one process with {first.name}; its output is in {first / 'log.txt'}"
        in (second / "log.txt").read_text()
    )


@pytest.mark.e2e
def test_a_killed_group_records_only_the_members_that_had_not_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, todo = _prepared(tmp_path, "1,2,3")
    group = process_groups(p, todo)[0]
    _dies_by(monkeypatch, signal.SIGTERM)
    r = local._start(group, p.out_dir, 0, [None], 1)
    code = r.proc.wait(timeout=60)
    RunRecord.read(p.run_dir(group[0])).update(status="completed")  # the job recorded this one's end itself
    local._finished(r, code)
    assert RunRecord.read(p.run_dir(group[0])).status == "completed"
    cancelled = RunRecord.read(p.run_dir(group[1]))
    assert cancelled.status == "cancelled" and "terminated by SIGTERM" in (cancelled.error or "")
    assert RunRecord.read(p.run_dir(todo[2])).status == "pending"  # seed 3: another process, not started


@pytest.mark.e2e
def test_a_group_member_held_elsewhere_is_left_out_of_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlsweep.config.launchers import LocalSettings
    from rlsweep.launching.ledger import Ledger
    from rlsweep.rundir.lock import PointLock

    p, todo = _prepared(tmp_path)
    held = PointLock(p.run_dir(todo[0]))  # this live process holds seed 1
    held.acquire()
    try:
        commands = _dies_by(monkeypatch, signal.SIGKILL)
        local.run_local(process_groups(p, todo), p.out_dir, Ledger(p.out_dir), LocalSettings(max_parallel=1, gpus=[]))
    finally:
        held.release()
    assert commands == [[sys.executable, "-m", "rlsweep.launching.job", str(p.run_dir(todo[1]))]]
    assert f"{todo[0].run_id}: already running" in capsys.readouterr().out
    assert RunRecord.read(p.run_dir(todo[0])).status == "pending"


# --------------------------------------------------------------------------------------------- SLURM job


def test_a_slurm_job_of_several_points_marks_each_preempted_and_requeues_them_all(tmp_path: Path) -> None:
    p, todo = _prepared(tmp_path)
    dirs = [str(p.run_dir(pt)) for pt in todo]
    job = PointJob(dirs)
    again = job.checkpoint()
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.function is job
    assert [RunRecord.read(Path(d)).status for d in dirs] == ["preempted", "preempted"]
    assert pickle.loads(pickle.dumps(job)).run_dirs == dirs


def test_a_slurm_job_pickled_with_one_run_dir_still_loads(tmp_path: Path) -> None:
    old = PointJob.__new__(PointJob)
    old.__dict__ = {"run_dir": str(tmp_path / "a-s1")}  # what a job submitted before several points pickled
    assert pickle.loads(pickle.dumps(old)).run_dirs == [str(tmp_path / "a-s1")]


# --------------------------------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_two_seeds_train_in_one_process(tmp_path: Path) -> None:
    """The real command line on the synthetic env: both seeds complete, each with its own files, in one job."""
    out = run(tmp_path, "seed=1,2", "seeds_per_process=2", "sweep_name=spp", *TINY)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / "spp"
    records = ledger(sweep_dir)
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"completed"}
    assert len({r["pid"] for r in records.values()}) == 1  # one process trained both
    assert [r["attempts"] for r in records.values()] == [1, 1]
    assert "2 point(s) in 1 process(es)" in out.stdout and "in one process" in out.stdout
    for run_id, r in records.items():
        assert r["global_step"] == r["total_steps"] > 0
        assert (sweep_dir / run_id / "metrics.jsonl").stat().st_size > 0
        assert (sweep_dir / run_id / "checkpoint.pt").is_file()
        assert (sweep_dir / run_id / "run.json").is_file()
    # seeds: their own runs, not copies of one another
    first, second = sorted(records)
    assert (sweep_dir / first / "metrics.jsonl").read_text() != (sweep_dir / second / "metrics.jsonl").read_text()
    rerun = run(tmp_path, "seed=1,2", "seeds_per_process=2", "sweep_name=spp", *TINY)
    assert rerun.returncode == 0 and "skipping 2 point(s): 2 completed" in rerun.stdout


@pytest.mark.e2e
def test_a_killed_process_of_two_seeds_records_both_and_a_rerun_resumes_both_without_gaps(tmp_path: Path) -> None:
    """The real job process, paused after its checkpoint at iteration 4, then SIGKILLed (no handler runs)."""
    args = ["seed=1,2", "seeds_per_process=2", *PAUSED, "sweep_name=gkill", *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "gkill"
    try:
        wait_for(lambda: len(ledger(sweep_dir)) == 2, 120, "the sweep's records")
        first, second = (sweep_dir / run_id for run_id in sorted(ledger(sweep_dir)))
        wait_for(lambda: paused(first / "log.txt"), 180, "the process to pause after its checkpoint")
        (pid,) = {r["pid"] for r in ledger(sweep_dir).values()}
        os.kill(pid, signal.SIGKILL)
        out, _ = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:  # a failed wait: the autouse fixture stops the job, this stops the launcher
            launcher.kill()
    assert launcher.returncode == 1, out[-2000:]
    for record in ledger(sweep_dir).values():
        assert record["status"] == "failed" and "killed by signal 9" in record["error"]

    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    log = (first / "log.txt").read_text()
    for run_dir in (first, second):
        assert f"[{run_dir.name}] resumed at iteration 4, step 256" in log
        assert steps(run_dir) == STEPS  # nothing lost, nothing twice
    assert [r["attempts"] for r in ledger(sweep_dir).values()] == [2, 2]


@pytest.mark.slurm
@slurm
def test_two_seeds_are_one_slurm_array_task(tmp_path: Path) -> None:
    out = run(tmp_path, "seed=1,2,3", "seeds_per_process=2", "sweep_name=spps", *SLURM, *TINY)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "submitted 3 point(s) in 2 task(s)" in out.stdout
    records = ledger(tmp_path / "sweeps" / "spps")
    assert {r["status"] for r in records.values()} == {"completed"}
    by_seed = {r["seed"]: r for r in records.values()}
    assert by_seed[1]["job_id"] == by_seed[2]["job_id"] != by_seed[3]["job_id"]
    assert by_seed[1]["pid"] == by_seed[2]["pid"] and by_seed[1]["log"] == by_seed[2]["log"]


@pytest.mark.slurm
@slurm
def test_a_preempted_slurm_task_marks_every_seed_preempted_and_both_resume(tmp_path: Path) -> None:
    args = ["seed=1,2", "seeds_per_process=2", *PAUSED, "sweep_name=sppp", *SLURM, "env=fake", "debug=smoke",
            "logger=none"]  # fmt: skip
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "sppp"
    run_ids = [f"ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s{seed}" for seed in (1, 2)]
    wait_for(lambda: job_paused(sweep_dir, run_ids[0]), 240, "the job's pause")
    (job_id,) = {ledger(sweep_dir)[r]["job_id"] for r in run_ids}  # one task for both seeds
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what SLURM sends on preemption
    wait_for(lambda: all(ledger(sweep_dir)[r]["status"] == "preempted" for r in run_ids), 60, "both preempted")
    out, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, out[-3000:]
    for run_id in run_ids:
        record = ledger(sweep_dir)[run_id]
        assert record["status"] == "completed" and record["attempts"] == 2
        assert [h[1] for h in record["history"]][-3:] == ["preempted", "running", "completed"]
        assert steps(sweep_dir / run_id) == STEPS
