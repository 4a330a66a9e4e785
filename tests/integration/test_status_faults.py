"""What ``rlsweep status``, the dry run, the launch and the report say when something is off (issue #27): a frozen job
(SIGSTOP) or a silent host, a heartbeat from the future, NaN and Infinity in metrics.jsonl, a damaged record.

Each asserts what a user sees, and that the status table and the launch judge a point alike. Only the frozen job is
a real process (a SIGSTOP is the point of it); the rest is written as a run leaves it and read in this process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from inline import TINY as INLINE_TINY
from inline import finished
from procs import ENV, PAUSED, TINY, cmd, ledger, paused, status, stop_leftovers, wait_for

from rlsweep.analysis.load import load_sweep
from rlsweep.analysis.stats import summarize
from rlsweep.cli import commands as cli
from rlsweep.cli import sweep as app
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching import local
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import GROUPS, Plan, plan
from rlsweep.launching.points import prepare, process_groups, rebuild_record, status_table
from rlsweep.rundir.lock import STALE_S, STALLED_S, holder, live_holder
from rlsweep.rundir.record import RunRecord
from rlsweep.tracking import read_metrics


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[Path]:
    """For a test that starts a launch: whatever it left running is ended after it."""
    yield tmp_path
    stop_leftovers(tmp_path)


def _sweep(tmp_path: Path, **records: dict[str, Any]) -> Path:
    """A launched sweep with one record per run id (fields as given), as `rlsweep status` reads it."""
    sweep_dir = tmp_path / "sweeps" / "s"
    for run_id, fields in records.items():
        RunRecord(run_id=run_id, run_dir=str(sweep_dir / run_id), total_steps=640, **fields).write()
    Ledger(sweep_dir).record_launch("local", len(records))
    return sweep_dir


def _other_hosts_lock(run_dir: Path, heartbeat: float, job_id: str = "991_3") -> Path:
    """The lock of a job on another node (pid 4242 of a SLURM job) whose last heartbeat was at ``heartbeat``."""
    lock = run_dir / ".lock-1.json"
    lock.write_text(json.dumps({"host": "gpu-node-12", "pid": 4242, "job_id": job_id, "taken": heartbeat}))
    os.utime(lock, (heartbeat, heartbeat))
    return lock


def _row(table: str, run_id: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.startswith(run_id))


def _plan(tmp_path: Path, *overrides: str) -> Plan:
    p = plan(quote_group_values([*INLINE_TINY, *overrides], GROUPS), multirun=True)
    p.out_dir = tmp_path / "sweeps" / "g"
    return p


# ---- a frozen job, a silent host ------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_frozen_job_is_stalled_in_status_with_its_host_pid_and_heartbeat_age(no_leftovers: Path) -> None:
    """SIGSTOP the job of a real launch: its process lives, so the lock stays live, but its heartbeat stops. Status
    shows the heartbeat's age while it runs, then ``stalled``, naming host and pid and what it may mean, no ETA."""
    tmp_path = no_leftovers
    args = ["seed=1", *PAUSED, "sweep_name=frozen", *TINY]
    launcher = subprocess.Popen(cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    sweep_dir = tmp_path / "sweeps" / "frozen"
    run_dir = sweep_dir / "ppo_rnd_a0-env_fake-debug.pause_at_iteration=4-s1"
    try:
        wait_for(lambda: paused(run_dir / "log.txt"), 180, "the point to pause after its checkpoint")
        pid = ledger(sweep_dir)[run_dir.name]["pid"]
        table = status(sweep_dir)
        assert "1 running" in table and table.splitlines()[0].split()[-1] == "beat", table
        row = _row(table, run_dir.name[:40])
        assert row[1] == "running" and row[-3] == str(pid) and row[-1] == "s", table  # "<n> s" since its last beat
        assert "STALLED" not in table

        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 30, "the job to stop")
        h = holder(run_dir)
        assert h is not None
        old = time.time() - STALLED_S - 10  # as if it had been stopped for 100 s: no sleeping
        os.utime(run_dir / f".lock-{h.generation}.json", (old, old))
        table = status(sweep_dir)
        assert "1 stalled" in table and "ETA" not in table, table
        assert _row(table, run_dir.name[:40])[1] == "stalled"
        assert f"STALLED {run_dir.name}: no heartbeat for 10" in table, table  # 100 s, and the time status took
        assert f"pid {pid} on {socket.gethostname()}" in table.split("STALLED")[1]
        assert "stopped (SIGSTOP, Ctrl-Z; kill -CONT resumes it) or hung on I/O" in table
        assert max(len(line) for line in table.splitlines()) <= 120, table
        assert live_holder(run_dir) is not None  # stalled, not dead: a launch leaves it alone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(ledger(sweep_dir)[run_dir.name]["pid"], signal.SIGCONT)
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)


def test_another_hosts_point_is_running_then_stalled_then_stopped_by_its_heartbeat_age(tmp_path: Path) -> None:
    sweep_dir = _sweep(tmp_path, a={"status": "running", "host": "gpu-node-12", "pid": 4242, "job_id": "991_3"})
    run_dir = sweep_dir / "a"
    lock = _other_hosts_lock(run_dir, time.time() - 20)
    table = status_table(Ledger(sweep_dir))
    assert _row(table, "a") == ["a", "running", "0", "0/640", "(0%)", "-", "991_3", "20", "s"], table
    assert "STALLED" not in table

    old = time.time() - 150  # five beats missed, but not yet STALE_S: alive by its heartbeat, and silent
    os.utime(lock, (old, old))
    table = status_table(Ledger(sweep_dir))
    assert _row(table, "a")[:2] == ["a", "stalled"] and "1 stalled" in table, table
    lines = table.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("STALLED a: no heartbeat for 15"))  # 150 s
    assert lines[at].endswith(" s from pid 4242 on gpu-node-12, SLURM job 991_3")
    assert lines[at + 1] == ("  stopped (SIGSTOP), hung on I/O, or its node unreachable; a launch takes it over once "
                             "5 min pass without a heartbeat")  # fmt: skip

    old = time.time() - STALE_S - 5
    os.utime(lock, (old, old))
    table = status_table(Ledger(sweep_dir))
    assert _row(table, "a")[:2] == ["a", "stopped"] and "STALLED" not in table and "beat" not in table, table


def test_the_status_table_fits_120_columns_with_long_progress_and_job_columns(tmp_path: Path) -> None:
    """A 100M-step SLURM sweep, one point running (the heartbeat column), one completed: the run ids give way."""
    long_id = "ppo_snd_vic_b1-critic_init_sqrt2-normalise_int_reward_off-env_montezuma-s12"
    sweep_dir = _sweep(tmp_path, **{long_id: {"status": "running", "job_id": "12345678_123", "pid": 4242},
                                    "done-s1": {"status": "completed"}})  # fmt: skip
    RunRecord.read(sweep_dir / long_id).update(total_steps=100_000_000, global_step=99_999_936)
    (sweep_dir / long_id / "metrics.jsonl").write_text(json.dumps({"global_step": 99_999_936, "episode/score": 12345.6,
                                                                   "perf/sps": 1234.5}) + "\n")  # fmt: skip
    _other_hosts_lock(sweep_dir / long_id, time.time() - 5, job_id="12345678_123")
    table = status_table(Ledger(sweep_dir))
    assert max(len(line) for line in table.splitlines()) <= 120, table
    assert "99999936/100000000 (100%)" in table and "12345678_123" in table and "score=1.235e+04" in table
    assert long_id[:30] in table and "5 s" in table


# ---- a heartbeat from the future ------------------------------------------------------------------------------------


def _failed_point_locked_from_the_future(tmp_path: Path, ahead: float) -> tuple[Plan, str, Path]:
    """A point whose record says failed, and a lock of another host whose heartbeat is ``ahead`` s ahead of this
    host's clock; the plan, the point's run id and its run directory."""
    p = _plan(tmp_path, "seed=1", "sweep_name=g")
    (point,) = prepare(p, "local")
    run_dir = p.run_dir(point)
    RunRecord.read(run_dir).update(status="failed", error="process killed by signal 9")
    Ledger(p.out_dir).record_launch("local", 1)
    _other_hosts_lock(run_dir, time.time() + ahead)
    return p, point.run_id, run_dir


def test_a_heartbeat_a_little_in_the_future_is_clock_skew_and_status_says_running_as_the_launch_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Within STALE_S ahead, the other node's clock runs ahead: the point runs there, whatever its record says. The
    launch leaves it alone ("still running"), and status says running (it said failed)."""
    p, run_id, _ = _failed_point_locked_from_the_future(tmp_path, 60)
    table = status_table(Ledger(p.out_dir))
    assert _row(table, run_id)[1] == "running" and "1 running" in table and "FAILED" not in table, table
    assert _row(table, run_id)[-2:] == ["0", "s"]  # the heartbeat's age: fresh
    capsys.readouterr()
    assert prepare(p, "local") == [] and "skipping 1 point(s): 1 still running" in capsys.readouterr().out


def test_a_heartbeat_far_in_the_future_is_not_credible_and_the_launch_reruns_the_point_status_calls_failed(
    tmp_path: Path,
) -> None:
    """Further ahead than STALE_S no cluster's clock runs: a bad stamp, which would hold the point until that time
    came. The lock counts as stale: the launch reruns the point, and status says what its record says."""
    p, run_id, run_dir = _failed_point_locked_from_the_future(tmp_path, STALE_S + 60)
    assert live_holder(run_dir) is None
    table = status_table(Ledger(p.out_dir))
    assert _row(table, run_id)[1] == "failed" and f"FAILED {run_id}" in table, table
    assert [q.run_id for q in prepare(p, "local")] == [run_id]


# ---- NaN and Infinity in metrics.jsonl ------------------------------------------------------------------------------


def test_nan_and_infinity_in_metrics_are_read_as_missing_with_one_warning_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rlsweep writes null for a value that is not finite; a NaN or Infinity literal (another tool, an older
    version) reads as missing everywhere, not as inf, and a warning names the file, the line and the key once."""
    done = {"status": "completed", "name": "cfg", "global_step": 640}
    sweep_dir = _sweep(tmp_path, **{f"cfg-s{seed}": {**done, "seed": seed} for seed in (1, 2, 3)})
    for seed in (1, 2, 3):
        lines = [{"global_step": 64 * i, "episode/score": float(i), "perf/sps": 50.0} for i in range(1, 11)]
        if seed == 1:
            lines[-1]["episode/score"] = math.inf  # json.dumps writes the literals Infinity and NaN
            lines[-1]["perf/sps"] = math.nan
        (sweep_dir / f"cfg-s{seed}" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    bad = sweep_dir / "cfg-s1" / "metrics.jsonl"
    assert "Infinity" in bad.read_text() and "NaN" in bad.read_text()
    capsys.readouterr()

    for _ in range(2):  # a launcher prints the table again and again: one warning
        table = status_table(Ledger(sweep_dir))
        assert "inf" not in table and "nan" not in table.lower(), table
        assert _row(table, "cfg-s1")[5] == "-" and _row(table, "cfg-s2")[5] == "score=10", table
    err = capsys.readouterr().err
    assert err.count("rlsweep: warning:") == 1, err
    assert f"{bad}: line 10: episode/score is Infinity (and 1 more such value(s))" in err and "read as missing" in err

    data = load_sweep(sweep_dir)
    assert any(f"{bad}: line 10: episode/score is Infinity" in issue for issue in data.issues)
    summary = summarize(data, "episode/score", n_resamples=200)
    assert all(math.isfinite(x) for x in summary.select_dtypes("number").to_numpy().ravel() if x == x), summary
    iqm = float(summary["iqm"].iloc[0])
    # Exact arithmetic, no rounding: a run's final value is its mean score over the last 10 % of steps (576 and 640:
    # 9 and 10; seed 1's Infinity at 640 is missing, so 9), so each run's, and any mean of them, lies in [9, 10];
    # read as a number, the Infinity would make it inf.
    assert math.isfinite(iqm) and iqm == pytest.approx(10.0, abs=1.0)
    assert read_metrics(bad)[-1]["episode/score"] is None and read_metrics(bad)[-1]["perf/sps"] is None
    assert rebuild_record(sweep_dir / "cfg-s1", "cfg-s1").global_step == 640
    assert "rlsweep: warning:" not in capsys.readouterr().err  # said once per file in a process


# ---- a damaged record -----------------------------------------------------------------------------------------------


def _damage(run_dir: Path) -> str:
    text = (run_dir / "run.json").read_text()
    (run_dir / "run.json").write_text(text[: len(text) // 2])
    return text


def test_a_rebuilt_record_has_the_sweep_name_and_the_attempts_its_log_shows(tmp_path: Path) -> None:
    """One point completed in two starts of the local launcher, one half done by an inline run (no start line in its
    log); both records damaged. The launch rebuilds them with the plan's sweep name (also the completed one, which it
    then skips) and the starts their logs show, at least one where there is progress."""
    p = _plan(tmp_path, "seed=1,2", "sweep_name=g")
    done, half = prepare(p, "local")
    for point, step, starts in ((done, 256, 2), (half, 128, 0)):
        run_dir = p.run_dir(point)
        RunRecord.read(run_dir).update(global_step=step, attempts=max(starts, 1))
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"global_step": s}) + "\n" for s in (64, step)))
        (run_dir / "checkpoint.pt").write_bytes(b"a checkpoint")
        log = "".join(f"\n=== 2025-01-0{i} 10:00:00 python -m rlsweep.launching.job {run_dir}\nit 1/4\n"
                      for i in range(1, starts + 1))  # fmt: skip
        (run_dir / "log.txt").write_text(log)
        _damage(run_dir)
    todo = prepare(p, "local")
    assert [q.run_id for q in todo] == [half.run_id]  # rebuilt as completed (budget reached) and as failed
    for point, rebuilt, attempts in ((done, "completed", 2), (half, "failed", 1)):
        r = RunRecord.read(p.run_dir(point))
        assert (r.sweep, r.status, r.attempts) == ("g", rebuilt, attempts), r
        assert r.choices == point.choices and r.name == point.name


def test_the_dry_run_puts_a_damaged_records_seed_in_the_process_the_launch_will(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two seeds at step 128 share a process; one's record is damaged. The dry run counts it at the step its
    rebuilt record will have (128, from its metrics), as the launch does, and writes nothing."""
    monkeypatch.chdir(tmp_path)
    args = ["seed=1,2", "seeds_per_process=2", *INLINE_TINY, "sweep_name=g"]
    p = plan(quote_group_values(args, GROUPS), multirun=True)
    prepare(p, "local")
    for point in p.points:
        run_dir = p.run_dir(point)
        RunRecord.read(run_dir).update(global_step=128, status="cancelled")
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"global_step": s}) + "\n" for s in (64, 128)))
    victim = p.run_dir(p.points[0])
    _damage(victim)
    damaged = (victim / "run.json").read_text()
    capsys.readouterr()

    out = finished(app.main, ["-m", *args, "dry_run=true"], capsys)
    assert out.returncode == 0 and "dry run: 2 job(s) in 1 process(es)," in out.stdout, out.stdout
    assert (victim / "run.json").read_text() == damaged and not (victim / "run.json.damaged").exists()
    todo = prepare(p, "local")  # the launch: rebuilds the record, then groups
    assert (victim / "run.json.damaged").exists()
    assert process_groups(p, todo) == [p.points]


def test_the_report_of_a_sweep_whose_only_record_is_damaged_names_it_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = _sweep(tmp_path, **{"cfg-s1": {"status": "completed", "name": "cfg", "seed": 1, "global_step": 640}})
    (sweep_dir / "cfg-s1" / "metrics.jsonl").write_text(json.dumps({"global_step": 640, "episode/score": 1.0}) + "\n")
    (sweep_dir / "cfg-s1" / "run.json").write_text('{"run_id": "cfg-s1", "status": "compl')  # cut mid-write
    out = finished(cli.main, ["report", str(sweep_dir)], capsys)
    assert out.returncode == 2
    assert "no runs found" not in out.stderr, out.stderr
    err = out.stderr
    assert f"{sweep_dir / 'cfg-s1' / 'run.json'} is damaged (Unterminated string starting at: line 1" in err, err
    assert "the next launch of the sweep (the same sweep command, which trains nothing completed) rebuilds" in err


# ---- a resumed point ------------------------------------------------------------------------------------------------


class _NoProcess:
    """What the local launcher's ``_start`` gets from Popen here: nothing runs."""

    pid = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_the_local_launcher_says_resume_at_step_for_a_point_with_progress_else_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _plan(tmp_path, "seed=1,2", "sweep_name=g")
    fresh, resumed = prepare(p, "local")
    RunRecord.read(p.run_dir(resumed)).update(global_step=128)
    monkeypatch.setattr(local.subprocess, "Popen", _NoProcess)
    capsys.readouterr()
    local._start([fresh], p.out_dir, 0, [None], 1)
    local._start([resumed], p.out_dir, 1, [None], 1)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"[rlsweep] start {fresh.run_id}", f"[rlsweep] resume {resumed.run_id} at step 128"], out
