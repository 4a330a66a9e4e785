"""Faults of the second pass (#27): records under concurrency, a budget under a changed batch, a W&B run whose
checkpoints were deleted, two ``rlsweep seeds`` at once, an unwritable record.

The interleavings are made, not waited for: a launch is stopped between reading a record and writing it (its
write phase waits on an event) while a real job takes the point, so the worst moment happens every time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inline import TINY, finished, metrics, record, sweep_inline
from procs import ENV, PAUSED, paused, stop_leftovers, wait_for

from rlsweep.cli import seeds
from rlsweep.cli import sweep as app
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching import local, points
from rlsweep.launching.job import run_point
from rlsweep.launching.plan import GROUPS, Plan, plan
from rlsweep.rundir.lock import PointLock
from rlsweep.rundir.record import RunRecord, amend, amend_unheld, unchanged, write_json_atomic

pytestmark = [pytest.mark.e2e]  # real jobs, W&B's service, a file made immutable


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


def _plan(cwd: Path, *overrides: str, sweep_name: str) -> Plan:
    p = plan(quote_group_values([*overrides, f"sweep_name={sweep_name}"], GROUPS), multirun=True)
    p.out_dir = cwd / "sweeps" / sweep_name
    return p


class _PausedBeforeWriting:
    """``prepare`` run in a thread and stopped after it has read and judged every record, before it writes any:
    the moment at which another launch's job may take the point."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, p: Plan) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        self.result: list[Any] = []
        real: Callable[..., bool] = points._write_start

        def paused_write(*args: Any) -> bool:
            self.reached.set()
            assert self.go.wait(120), "the test never let the paused launch go on"
            return real(*args)

        monkeypatch.setattr(points, "_write_start", paused_write)
        self.thread = threading.Thread(target=lambda: self.result.append(points.prepare(p, "local")), daemon=True)
        self.thread.start()
        assert self.reached.wait(60), "prepare did not reach its write phase"

    def finish(self) -> list[Any]:
        self.go.set()
        self.thread.join(60)
        assert not self.thread.is_alive() and self.result, "prepare did not finish"
        points_written: list[Any] = self.result[0]
        return points_written


# ---- a launch's record writes never undo a newer state ---------------------------------------------------------------


def test_a_launch_stopped_between_its_read_and_its_write_leaves_a_point_a_job_took_meanwhile_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Launch A prepares the point and its job starts; launch B had read the record (pending) before and writes
    after the job began training. B must leave the record as the job wrote it (running, attempts 1, its pid,
    its history), then A's launcher, seeing an earlier process of the point end, must not mark the job's record
    failed either."""
    args = (*TINY, *PAUSED, "seed=1")
    a = _plan(tmp_path, *args, sweep_name="race")
    (point,) = points.prepare(a, "local")
    run_dir = a.run_dir(point)
    b = _PausedBeforeWriting(monkeypatch, _plan(tmp_path, *args, sweep_name="race"))

    with open(run_dir / "log.txt", "ab") as log:
        job = subprocess.Popen([sys.executable, "-m", "rlsweep.launching.job", str(run_dir)], env=ENV, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: paused(run_dir / "log.txt"), 180, "the job to train and pause after its checkpoint")
        training = record(run_dir)
        assert training["status"] == "running" and training["pid"] == job.pid and training["attempts"] == 1

        assert b.finish() == []  # B starts nothing ...
        assert "another attempt runs it" in capsys.readouterr().out
        assert record(run_dir) == training  # ... and writes nothing: not pending, not attempts 0, history kept

        # A's launcher sees a process of this point end unrecorded (an earlier start, killed): the job's record
        # is another process's, and stays as it is.
        dead = subprocess.Popen(["true"])
        dead.wait()
        local._finished(local._Running([point], [run_dir], dead, 0), -signal.SIGKILL)
        assert record(run_dir) == training
    finally:
        job.send_signal(signal.SIGTERM)
        job.wait(120)
    assert record(run_dir)["status"] == "cancelled"  # the job recorded its own end


def test_a_launch_stopped_between_its_read_and_its_write_does_not_revert_a_point_completed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same moment, but the other launch's job has finished the point by the time B writes: B's decision
    (start it) was made on a record that no longer exists, so the compare-and-swap refuses it."""
    a = _plan(tmp_path, *TINY, "seed=1", sweep_name="done")
    (point,) = points.prepare(a, "local")
    run_dir = a.run_dir(point)
    b = _PausedBeforeWriting(monkeypatch, _plan(tmp_path, *TINY, "seed=1", sweep_name="done"))
    run_point(run_dir)
    done = record(run_dir)
    assert done["status"] == "completed" and done["attempts"] == 1
    assert b.finish() == []
    assert "another launch changed its record" in capsys.readouterr().out
    assert record(run_dir) == done  # not pending again, global_step and final metrics kept


def test_a_launch_whose_points_another_launch_claimed_meanwhile_says_they_run_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two launches of one sweep at the same moment: B has read the point's record (none yet) when A writes it, and
    A's job has not taken the point's lock yet. B leaves the point alone, and its exit says the point runs elsewhere
    (3), not "rerun the same command to resume" (1): A runs it."""
    b_plan = _plan(tmp_path, *TINY, "seed=1", sweep_name="claimed")
    b = _PausedBeforeWriting(monkeypatch, b_plan)
    (point,) = b_plan.points
    run_dir = b_plan.run_dir(point)
    RunRecord(run_id=point.run_id, run_dir=str(run_dir), launcher="local").write()  # A's prepare, no job yet
    assert b.finish() == []
    assert "another launch changed its record" in capsys.readouterr().out
    assert app.exit_status(b_plan) == 3
    assert "still running or queued elsewhere" in capsys.readouterr().out


def test_amend_is_a_compare_and_swap_and_a_launcher_never_writes_a_held_point(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = RunRecord(run_id="r", run_dir=str(run_dir))
    first.write()
    seen = RunRecord.read(run_dir)
    assert amend(run_dir, status="running") is not None  # a newer write
    assert amend_unheld(run_dir, unchanged(seen), status="cancelled") is None  # decided on the older one: refused
    assert RunRecord.read(run_dir).status == "running" and RunRecord.read(run_dir).revision == 2
    lock = PointLock(run_dir)
    lock.acquire()  # this process runs the point now
    try:
        now = RunRecord.read(run_dir)
        assert amend_unheld(run_dir, unchanged(now), status="failed") is None
    finally:
        lock.release()
    assert amend_unheld(run_dir, unchanged(now), status="failed") is not None  # released: a launcher may write
    assert RunRecord.read(run_dir).status == "failed"


# ---- the budget is in agent steps ------------------------------------------------------------------------------------


def test_resume_continue_under_a_smaller_batch_trains_only_the_steps_left(tmp_path: Path) -> None:
    """256 steps at 64 per iteration, then continued under 32 per iteration (ppo.num_steps 16 -> 8) to a budget of
    300: 44 steps left take 2 iterations, to 320 (under one batch over, as any budget that is not a multiple of
    the batch). Before, the iteration count of the new batch from 0 (10) trained 6 more iterations, to 448."""
    sweep_dir = sweep_inline(tmp_path, *TINY, "name=batch", sweep_name="batch")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    sweep_inline(tmp_path, *TINY, "name=batch", "ppo.num_steps=8", "budget.total_steps=300", "resume=continue",
                 sweep_name="batch")  # fmt: skip
    r = record(run_dir)
    assert r["status"] == "completed" and r["global_step"] == 320 and r["attempts"] == 2
    assert [m["global_step"] for m in metrics(run_dir)] == [64, 128, 192, 256, 288, 320]
    assert "continued under a changed config: ppo.num_steps 16 -> 8" in r["changes"][-1][1]


# ---- a W&B run whose checkpoints were deleted ------------------------------------------------------------------------


def _offline_steps(run_dir: Path) -> dict[str, list[int]]:
    """The global steps each offline W&B run of ``run_dir`` holds, by run id (what ``wandb sync`` would upload)."""
    from rlsweep.tracking.wandb_log import records

    held: dict[str, list[int]] = {}
    for log in run_dir.glob("wandb/offline-run-*/run-*.wandb"):
        rows = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                for rec in records(log) if rec.WhichOneof("record_type") == "history"]  # fmt: skip
        held.setdefault(log.stem.split("-", 1)[1], []).extend(int(row["global_step"]) for row in rows)
    return held


def test_a_run_whose_checkpoints_were_deleted_starts_over_in_a_new_wandb_run_and_keeps_the_old_lines(
    tmp_path: Path,
) -> None:
    """A W&B-logged run checkpointed at step 128 and crashed; its checkpoints are deleted. The rerun starts at step
    0: under the old W&B id it would send steps W&B already holds (ignored there, so W&B and metrics.jsonl would
    disagree) and drop the old lines silently. It must set them aside, start a new W&B run and say so."""
    logged = ("logger=wandb", "logger.mode=offline", "budget.checkpoint_every=2")
    sweep_dir = tmp_path / "sweeps" / "gone"
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        sweep_inline(tmp_path, *TINY, *logged, "name=gone", "debug.crash_at_iteration=3", sweep_name="gone")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    old_id = record(run_dir)["wandb_id"]
    assert old_id and [m["global_step"] for m in metrics(run_dir)] == [64, 128]
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run_dir / name).unlink(missing_ok=True)

    sweep_inline(tmp_path, *TINY, *logged, "name=gone", sweep_name="gone")
    r = record(run_dir)
    assert r["status"] == "completed" and r["wandb_id"] not in (None, old_id)
    assert [m["global_step"] for m in metrics(run_dir)] == [64, 128, 192, 256]  # from 0, once each
    (aside,) = (run_dir / "discarded").iterdir()
    assert [json.loads(x)["global_step"] for x in (aside / "metrics.jsonl").read_text().splitlines()] == [64, 128]
    assert list(aside.glob("wandb/offline-run-*"))  # the old W&B run's files, kept as they were
    assert f"W&B run {old_id}" in r["changes"][-1][1] and "started over at step 0" in r["changes"][-1][1]
    assert _offline_steps(run_dir) == {r["wandb_id"]: [64, 128, 192, 256]}  # the new W&B run agrees with the store


# ---- one rlsweep seeds per sweep -------------------------------------------------------------------------------------


def test_a_second_rlsweep_seeds_on_a_sweep_refuses_at_once_naming_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = sweep_inline(tmp_path, *TINY, "model=A,B", "seed=1,2", sweep_name="seeds")
    held = PointLock(sweep_dir / seeds.SEEDS_LOCK_DIR)
    (sweep_dir / seeds.SEEDS_LOCK_DIR).mkdir()
    held.acquire()  # another rlsweep seeds, running (this process stands in for it: same host, live pid)
    try:
        for extra in ([], ["--dry-run"]):
            out = finished(seeds.main, [str(sweep_dir), *extra], capsys)
            assert out.returncode == 3, out.stderr
            assert f"another rlsweep seeds runs on seeds (pid {os.getpid()}" in out.stderr
            assert not (sweep_dir / "seeds.json").exists()  # nothing recorded, nothing launched
    finally:
        held.release()
    out = finished(seeds.main, [str(sweep_dir), "--dry-run"], capsys)  # once the first has ended
    assert out.returncode == 0, out.stderr
    assert (sweep_dir / "seeds.json").exists()


# ---- an unwritable record --------------------------------------------------------------------------------------------


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """``chattr +i``: a file not even root can replace (ext4, xfs), undone after the test."""
    made: list[Path] = []

    def make(path: Path) -> None:
        out = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot make a file immutable here (chattr +i needs root and ext4/xfs): {out.stderr.strip()}")
        made.append(path)

    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed")
    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_an_unwritable_record_stops_the_launch_in_one_line_and_leaves_no_temp_file(
    tmp_path: Path, immutable: Callable[[Path], None], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    sweep_dir = sweep_inline(tmp_path, *TINY, sweep_name="ro")
    (run_dir,) = (p for p in sweep_dir.iterdir() if p.is_dir())
    before = (run_dir / "run.json").read_text()
    immutable(run_dir / "run.json")
    monkeypatch.chdir(tmp_path)
    out = finished(app.main, ["-m", *TINY, "budget.total_steps=512", "sweep_name=ro"], capsys)  # more steps: it runs
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line == f"rlsweep: error: cannot write {run_dir / 'run.json'}: Operation not permitted; make it writable, " \
                   "then rerun the same command"  # fmt: skip
    assert (run_dir / "run.json").read_text() == before
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert "start" not in out.stdout  # nothing was started


def test_a_failed_atomic_write_removes_its_temp_file_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"a": 1})
    path.unlink()
    path.mkdir()  # a directory in the file's place: the rename fails
    with pytest.raises(OSError, match=f"cannot write {path}: Is a directory"):
        write_json_atomic(path, {"a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
