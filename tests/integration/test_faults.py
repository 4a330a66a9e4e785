"""Faults, done for real: two launches of one sweep, a killed launcher and its orphaned job, a reused pid, a lock
of another host, a superseded owner, a changed config, a raised budget, a corrupt checkpoint, a damaged record
and a full filesystem. Each asserts what a user sees (exit status, one line, ``rlsweep status``) and that no
step is lost or trained twice. (SIGKILL mid-run, Ctrl-C, preemption, requeue and scancel are in
test_launchers.py and test_slurm.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from inline import TINY as INLINE_TINY
from inline import sweep_inline
from procs import ENV, PAUSED, STEPS, TINY, cmd, ledger, paused, run, status, steps, stop_leftovers, wait_for

from rlsweep.config.files import load_config
from rlsweep.rundir.lock import STALE_S, LockHeld, LockLost, PointLock, holder, live_holder
from rlsweep.rundir.record import RunRecord

pytestmark = [pytest.mark.e2e]  # faults done for real: processes, signals, locks between launches


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# ---- one live attempt per point -----------------------------------------------------------------------------------


def test_a_second_launch_leaves_a_running_point_alone_and_says_so(tmp_path: Path) -> None:
    """Two terminals, one sweep: the second launch starts nothing, exits 3 and names what still runs."""
    args = ["seed=1", *PAUSED, "sweep_name=twice", *TINY]
    first = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "twice"
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: paused(run_dir / "log.txt"), 180, "the point to pause after its checkpoint")
    before = ledger(sweep_dir)[run_dir.name]

    second = run(tmp_path, *args)
    assert second.returncode == 3, second.stdout[-2000:] + second.stderr[-2000:]
    assert "skipping 1 point(s): 1 still running" in second.stdout
    assert "still running or queued elsewhere" in second.stdout
    after = ledger(sweep_dir)[run_dir.name]
    assert after["attempts"] == before["attempts"] == 1 and after["status"] == "running"
    assert " running " in status(sweep_dir)

    first.send_signal(signal.SIGTERM)  # stops its point, which records itself as cancelled (a rerun resumes it:
    first.communicate(timeout=120)  # test_launchers.py)
    assert ledger(sweep_dir)[run_dir.name]["status"] == "cancelled" and steps(run_dir) == STEPS[:4]


def test_two_launches_started_together_train_every_point_once(tmp_path: Path) -> None:
    """The same sweep launched twice at the same moment: whichever way the race goes, every point is trained by
    one attempt (one start, each step logged once), and the launch that finishes last sees them all completed."""
    args = ["seed=1,2", "budget=smoke", "sweep_name=race", "hydra.launcher.max_parallel=2", *TINY]
    launches = [subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
                for _ in range(2)]  # fmt: skip
    codes = [p.wait(timeout=600) for p in launches]
    outputs = [p.communicate()[0].decode() for p in launches]
    assert set(codes) <= {0, 3} and 0 in codes, outputs
    records = ledger(tmp_path / "sweeps" / "race")
    assert len(records) == 2
    for run_id, r in records.items():
        assert r["status"] == "completed" and r["attempts"] == 1, (run_id, r)
        assert steps(tmp_path / "sweeps" / "race" / run_id) == [64, 128, 192, 256]


def test_an_orphaned_job_is_running_until_it_dies_then_stopped_and_resumed(tmp_path: Path) -> None:
    """SIGKILL the launcher: its job lives on (its own session) and status says running, truly; SIGKILL the job
    too: status says stopped at once (its lock's process is gone), and a rerun takes the lock over and resumes."""
    args = ["seed=1", *PAUSED, "sweep_name=orphan", *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "orphan"
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    wait_for(lambda: paused(run_dir / "log.txt"), 180, "the point to pause after its checkpoint")
    launcher.kill()
    launcher.wait(timeout=60)
    job_pid = ledger(sweep_dir)[run_dir.name]["pid"]
    assert live_holder(run_dir) is not None and "1 running" in status(sweep_dir)

    os.kill(job_pid, signal.SIGKILL)
    wait_for(lambda: live_holder(run_dir) is None, 60, "the killed job's lock to read as dead")
    assert "1 stopped" in status(sweep_dir) and ledger(sweep_dir)[run_dir.name]["status"] == "running"
    rerun = run(tmp_path, *args)
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert steps(run_dir) == STEPS and ledger(sweep_dir)[run_dir.name]["attempts"] == 2
    h = holder(run_dir)
    assert h is not None and h.generation == 2 and h.released  # taken over once, released at the end


def test_a_reused_pid_does_not_hold_a_point(tmp_path: Path) -> None:
    """A lock whose pid is alive on this host but belongs to a later process (another start time) is dead."""
    (tmp_path / ".lock-1.json").write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "process_start": 12345.0})
    )
    found = holder(tmp_path)
    assert found is not None and found.pid == os.getpid() and not found.alive()
    lock = PointLock(tmp_path)
    lock.acquire()
    try:
        assert lock.generation == 2 and not (tmp_path / ".lock-1.json").exists()
        assert live_holder(tmp_path) is not None  # this process, with its own start time
    finally:
        lock.release()
    assert live_holder(tmp_path) is None


def test_another_hosts_lock_is_live_while_its_heartbeat_is_fresh_then_taken_over(tmp_path: Path) -> None:
    lock_file = tmp_path / ".lock-7.json"
    lock_file.write_text(json.dumps({"host": "gpu-node-12", "pid": 4242, "job_id": "991_3"}))
    with pytest.raises(LockHeld, match=r"already running \(pid 4242 on gpu-node-12, SLURM job 991_3, heartbeat"):
        PointLock(tmp_path).acquire()
    stale = time.time() - STALE_S - 5
    os.utime(lock_file, (stale, stale))
    lock = PointLock(tmp_path)
    lock.acquire()
    assert lock.generation == 8 and sorted(p.name for p in tmp_path.iterdir()) == [".lock-8.json"]
    lock.release()


def test_of_two_contenders_for_a_stale_lock_exactly_one_wins(tmp_path: Path) -> None:
    stale = time.time() - STALE_S - 5
    (tmp_path / ".lock-1.json").write_text(json.dumps({"host": "gone-node", "pid": 1}))
    os.utime(tmp_path / ".lock-1.json", (stale, stale))
    # Both judged generation 1 stale; the first link of generation 2 wins, the second finds it taken.
    first, second = PointLock(tmp_path), PointLock(tmp_path)
    assert first._create(2) and not second._create(2)
    first.generation = 2
    with pytest.raises(LockHeld):
        second.acquire()  # it now sees the winner, alive on this host


def test_a_superseded_owner_stops_before_writing_anything_more(tmp_path: Path) -> None:
    """Another attempt takes the point over mid-run (this one had looked dead): the loop stops at its next
    iteration, before logging or checkpointing it, and leaves the record to the new owner."""
    sweep_dir = sweep_inline(tmp_path, *INLINE_TINY, "budget.checkpoint_every=1", sweep_name="fence")
    run_dir = next(p for p in sweep_dir.iterdir() if p.is_dir())
    for name in ("metrics.jsonl", "checkpoint.pt", "checkpoint.prev.pt", "run.json"):
        (run_dir / name).unlink()
    RunRecord(run_id=run_dir.name, run_dir=str(run_dir), status="pending").write()
    from rlsweep.training import train

    lock = PointLock(run_dir)
    lock.acquire()
    calls = 0

    def guard() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # after iteration 1 is written, the point is taken over
            assert lock.generation is not None
            (run_dir / f".lock-{lock.generation + 1}.json").write_text("{}")
        lock.check()

    with pytest.raises(LockLost, match="another attempt took this point over"):
        train(load_config(run_dir), run_dir, {"run_id": run_dir.name, "name": "", "seed": 1}, guard=guard)
    lock.release()
    assert [json.loads(line)["global_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [64]
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["iteration"] == 1
    assert RunRecord.read(run_dir).status == "pending"  # not "failed": the record is the new owner's


# ---- a run knows its configuration ---------------------------------------------------------------------------------


def test_a_changed_training_config_is_refused_for_the_grid_then_restarted_or_continued_on_request(
    tmp_path: Path,
) -> None:
    """A smoke test under a sweep name, then a bigger run under the same name: the sizes come from the ``debug``
    group, which a run's name leaves out, so the run ids are the same."""
    sweep_dir = sweep_inline(tmp_path, "seed=1,2", *INLINE_TINY, sweep_name="same")
    before = {p.name: (p / "config.yaml").read_text() for p in sweep_dir.iterdir() if p.is_dir()}
    args = ["seed=1,2", "env=fake", "logger=none", "debug=small", "budget=smoke", "sweep_name=same"]
    refused = run(tmp_path, *args)
    assert refused.returncode == 2
    line = _one_line_error(refused.stderr)
    assert line.startswith("rlsweep: error: 2 point(s) have progress made under another training config: ")
    assert "ppo.num_envs 4 -> 8" in line and "resume=continue" in line and "resume=restart" in line
    assert {p.name: (p / "config.yaml").read_text() for p in sweep_dir.iterdir() if p.is_dir()} == before

    restarted = run(tmp_path, *args, "resume=restart")
    assert restarted.returncode == 0, restarted.stdout[-2000:]
    for run_dir in (p for p in sweep_dir.iterdir() if p.is_dir()):
        r = RunRecord.read(run_dir)
        assert r.status == "completed" and r.attempts == 2 and "restarted" in r.changes[-1][1]
        assert steps(run_dir) == [512]  # one iteration of 8 envs x 64 steps, from step 0 again
        (aside,) = (run_dir / "discarded").iterdir()
        assert [json.loads(x)["global_step"] for x in (aside / "metrics.jsonl").read_text().splitlines()] == [
            64, 128, 192, 256]  # fmt: skip
    again = run(tmp_path, *args)  # the restarted runs are now under the new config: a rerun finds them done
    assert again.returncode == 0 and "skipping 2 point(s): 2 completed" in again.stdout
    assert all(RunRecord.read(p).attempts == 2 for p in sweep_dir.iterdir() if p.is_dir())


def test_a_key_added_by_a_later_rlsweep_at_its_default_is_not_a_change(tmp_path: Path) -> None:
    """A sweep made before ``motivation.stats_state`` existed: its config lacks the key, whose default keeps what
    the runs did, so the rerun finds its points completed instead of refusing them."""
    sweep_dir = sweep_inline(tmp_path, *INLINE_TINY, sweep_name="older")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    del config["motivation"]["stats_state"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    RunRecord.read(run_dir).update(fingerprint="from-before")
    sweep_inline(tmp_path, *INLINE_TINY, sweep_name="older")
    r = RunRecord.read(run_dir)
    assert r.attempts == 1 and r.fingerprint != "from-before"  # not rerun; fingerprinted anew


def test_completed_means_the_budget_was_reached_and_a_raised_budget_continues_the_run(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, *INLINE_TINY, sweep_name="longer")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    sweep_inline(tmp_path, *INLINE_TINY, "budget.total_steps=512", sweep_name="longer")
    r = RunRecord.read(run_dir)
    assert r.status == "completed" and r.global_step == 512 and r.total_steps == 512 and r.attempts == 2
    assert steps(run_dir) == list(range(64, 512 + 1, 64))


def test_continue_under_a_changed_config_is_recorded_in_the_run(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, *INLINE_TINY, "name=cont", sweep_name="cont")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    sweep_inline(tmp_path, *INLINE_TINY, "name=cont", "budget.total_steps=384", "ppo.ent_coef=0.01",
                 "resume=continue", sweep_name="cont")  # fmt: skip
    r = RunRecord.read(run_dir)
    assert r.status == "completed" and r.global_step == 384
    assert "continued under a changed config: ppo.ent_coef 0.001 -> 0.01" in r.changes[-1][1]
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["training"]["ppo.ent_coef"] == 0.01


# ---- checkpoints ----------------------------------------------------------------------------------------------------


def test_a_corrupt_checkpoint_is_one_line_then_resume_previous_goes_on_from_the_one_before(tmp_path: Path) -> None:
    """One point's newest checkpoint is damaged; the other point of the grid is healthy and must not be rolled back."""
    sweep_dir = sweep_inline(tmp_path, "seed=1,2", *INLINE_TINY, "budget.checkpoint_every=2", "logger=wandb",
                             "logger.mode=offline", sweep_name="corrupt")  # fmt: skip
    run_dir, healthy = sweep_dir / "ppo_rnd_a0-env_fake-s1", sweep_dir / "ppo_rnd_a0-env_fake-s2"
    first_wandb = RunRecord.read(run_dir).wandb_id
    (run_dir / "checkpoint.pt").write_bytes(b"\x00" * 100)  # the newest (step 256) is damaged; step 128 is kept
    args = ["seed=1,2", *TINY, "budget.total_steps=384", "budget.checkpoint_every=2", "logger=wandb",
            "logger.mode=offline", "sweep_name=corrupt"]  # fmt: skip
    failed = run(tmp_path, *args)
    assert failed.returncode == 1
    log = (run_dir / "log.txt").read_text()
    assert "cannot be read" in log and "resume=previous resumes from the one before it" in log
    assert "Traceback" not in log.split("===")[-1]
    assert RunRecord.read(run_dir).status == "failed"

    resumed = run(tmp_path, *args, "resume=previous")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert "resumed at iteration 2, step 128" in (run_dir / "log.txt").read_text()
    assert steps(run_dir) == [64, 128, 192, 256, 320, 384]  # recomputed from 128 on: no gap, no duplicate
    r = RunRecord.read(run_dir)
    assert r.status == "completed" and r.wandb_id not in (None, first_wandb)  # a new W&B run, the old one untouched
    (aside,) = (run_dir / "discarded").iterdir()
    assert (aside / "checkpoint.pt").read_bytes() == b"\x00" * 100  # set aside, not deleted
    assert RunRecord.read(healthy).attempts == 2 and not (healthy / "discarded").exists()
    assert steps(healthy) == [64, 128, 192, 256, 320, 384]


# ---- the ledger -----------------------------------------------------------------------------------------------------


def test_a_damaged_record_is_reported_then_rebuilt_from_the_run_without_training_again(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, "seed=1,2", *INLINE_TINY, sweep_name="damaged")
    victim = sweep_dir / "ppo_rnd_a0-env_fake-s1"
    text = (victim / "run.json").read_text()
    (victim / "run.json").write_text(text[: len(text) // 2])
    metrics_before = (victim / "metrics.jsonl").read_text()

    table = status(sweep_dir)
    assert "1 completed, 1 damaged" in table and f"DAMAGED {victim.name}: the next launch rebuilds" in table
    assert "run.json is not valid JSON" in table

    rerun = run(tmp_path, "seed=1,2", *TINY, "budget=smoke", "sweep_name=damaged")
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    assert "damaged record rebuilt" in rerun.stdout and "skipping 2 point(s): 2 completed" in rerun.stdout
    r = RunRecord.read(victim)
    assert r.status == "completed" and r.global_step == 256 and r.final["global_step"] == 256
    assert (victim / "metrics.jsonl").read_text() == metrics_before  # nothing was trained again
    assert (victim / "run.json.damaged").read_text() == text[: len(text) // 2]


# ---- a full filesystem ----------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 160 MiB filesystem (tmpfs) that the test can fill; mounting needs root (as in CI)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem to fill needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(disk)], capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield disk
    finally:
        stop_leftovers(disk)
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_stops_the_run_in_one_line_keeps_its_checkpoint_and_a_rerun_resumes(small_disk: Path) -> None:
    args = [*TINY, "budget=smoke", "budget.checkpoint_every=2", "sweep_name=full"]
    sweep_inline(small_disk, *INLINE_TINY, "budget.checkpoint_every=2", sweep_name="full")
    run_dir = small_disk / "sweeps" / "full" / "ppo_rnd_a0-env_fake-s1"
    checkpoint = (run_dir / "checkpoint.pt").stat().st_size
    # Leave half a checkpoint's room: the metrics lines fit, the next checkpoint does not.
    filler = small_disk / "filler"
    filler.write_bytes(b"\x00" * (shutil.disk_usage(small_disk).free - checkpoint // 2))

    longer = [*args, "budget.total_steps=512"]
    failed = run(small_disk, *longer)
    assert failed.returncode == 1
    r = RunRecord.read(run_dir)
    assert r.status == "failed" and "No space left on device" in (r.error or "")
    log = (run_dir / "log.txt").read_text().split("===")[-1]
    assert "free space, then rerun to resume from the last checkpoint" in log and "Traceback" not in log
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"] == 256  # the last good one
    assert not list(run_dir.glob(".*.tmp"))

    filler.unlink()
    sweep_inline(small_disk, *INLINE_TINY, "budget.checkpoint_every=2", "budget.total_steps=512", sweep_name="full")
    assert RunRecord.read(run_dir).status == "completed"
    assert steps(run_dir) == list(range(64, 512 + 1, 64))
    assert RunRecord.read(run_dir).attempts == 3
