"""``rlsweep tune`` end to end through the real command line: two arms (plain PPO, PPO + RND) on the fake env, three
trials each over two rungs, then each arm's chosen setting on fresh seeds in the confirm sweep; a second invocation
starts nothing, and the report of the confirm sweep shows what the search found. A tuner killed (SIGKILL) after its
first trials were asked resumes from its journal when its command is run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from procs import ENV, ledger, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GRID = ["motivation=none,rnd", "env=fake", "budget=smoke", "debug=smoke", "logger=none", "tune=smoke",
        "tune.trials=3", "tune.rungs=2", "sweep_name=tt"]  # fmt: skip


def tune(cwd: Path, grid: list[str] = GRID) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "tune", *grid], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


def test_tune_searches_every_arm_equally_then_confirms_on_fresh_seeds(tmp_path: Path) -> None:
    first = tune(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[rlsweep] equal budgets: yes, 256 agent steps per arm" in first.stdout
    search, confirm = tmp_path / "sweeps" / "tt", tmp_path / "sweeps" / "tt-confirm"
    state = json.loads((search / "tune.json").read_text())
    assert state["budgets"] == [64, 128] and state["equal_budgets"] and state["confirmed"]
    arms = state["arms"]
    assert len(arms) == 2
    for arm in arms.values():
        assert len(arm["trials"]) == 3 and arm["spent_steps"] == 64 + 64 + 128
        assert arm["states"] == {"complete": 1, "pruned": 2, "fail": 0, "running": 0}
        for t in arm["trials"]:  # a pruned trial stopped at rung 1 and has its value there only
            if t["state"] == "pruned":
                assert t["steps"] == 64 and [s for s, _ in t["values"]] == [64]
            else:
                assert t["steps"] == 128 and [s for s, _ in t["values"]] == [64, 128]
    # Every trial is an ordinary point of the search sweep; the confirm runs are points of their own sweep.
    records = ledger(search)
    assert len(records) == 6 and all(r["status"] == "completed" for r in records.values())
    trial_seeds = {r["seed"] for r in records.values()}
    confirm_records = ledger(confirm)
    fresh = {r["seed"] for r in confirm_records.values()}
    assert trial_seeds == {1, 2, 3} and fresh == {1000, 1001} and not trial_seeds & fresh
    assert len(confirm_records) == 4 and all(r["status"] == "completed" for r in confirm_records.values())
    for run_id, r in confirm_records.items():  # the arm's own overrides: the report compares arms, not values
        assert not any(o.startswith("ppo.") for o in r["overrides"]), r["overrides"]
        arm = run_id.rsplit("-s", 1)[0]
        chosen = arms[arm]["best"]["params"]
        config = (confirm / run_id / "config.yaml").read_text()
        assert f"learning_rate: {chosen['ppo.learning_rate']}" in config

    attempts = {k: r["attempts"] for k, r in {**records, **confirm_records}.items()}
    again = tune(tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "rung " not in again.stdout and "skipping 4 point(s): 4 completed" in again.stdout
    after = {**ledger(search), **ledger(confirm)}
    assert {k: r["attempts"] for k, r in after.items()} == attempts  # nothing new ran
    assert json.loads((search / "tune.json").read_text())["arms"] == arms

    # The report of the confirm sweep finds its search through the tune.json the tuner copied there.
    assert json.loads((confirm / "tune.json").read_text())["search_dir"] == str(search)
    report = subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "report", str(confirm)], cwd=tmp_path,
                            capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    summary = (confirm / "report" / "summary.md").read_text()
    section = summary[summary.index("## Tuning") : summary.index("## Method")]
    assert f"the confirm sweep of the search `{search}`" in section
    assert "Equal budgets: yes, 256 agent steps and 3 trial(s) per arm." in section
    for name, arm in arms.items():
        assert f"Trials of {arm['label']} ({name})" in section
        assert "complete (chosen)" in section and "pruned after rung 1" in section
        assert (confirm / "report" / f"tune_{name}.png").stat().st_size > 0
    assert "fANOVA (Optuna, seed 0) on the value at the first rung (64 agent steps) of 3 trial(s)" in section
    assert "id='tuning'" in (confirm / "report" / "report.html").read_text()


# ------------------------------------------------------------------------------------------- kill and resume

KILLED = [*GRID[:-1], "sweep_name=tk"]


def asked(search: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Per arm (study), each trial asked so far in the journal: number -> params."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if not (search / "tune.journal").exists():
        return {}
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(search / "tune.journal")))
    out = {}
    for frozen in storage.get_all_studies():
        study = optuna.load_study(study_name=frozen.study_name, storage=storage)
        out[frozen.study_name] = {t.number: dict(t.params) for t in study.get_trials(deepcopy=False)}
    return out


def _job_alive(pid: int) -> bool:
    """A job process of this sweep still runs (not ended, not a zombie, not a pid reused by something else)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"rlsweep.launching.job" in cmdline


def jobs_ended(sweep_dir: Path) -> bool:
    """No point of the sweep is held (its lock is free) or run by a live job process."""
    from rlsweep.rundir.lock import live_holder

    for run_id, record in ledger(sweep_dir).items():
        if live_holder(sweep_dir / run_id) is not None or (record.get("pid") and _job_alive(int(record["pid"]))):
            return False
    return True


def test_a_killed_tuner_resumes_its_trials_without_running_any_twice(tmp_path: Path) -> None:
    from rlsweep.rundir.metrics import METRICS_FILE, read_metrics

    search, confirm = tmp_path / "sweeps" / "tk", tmp_path / "sweeps" / "tk-confirm"
    proc = subprocess.Popen([sys.executable, "-m", "rlsweep.cli.commands", "tune", *KILLED], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)  # fmt: skip
    try:
        wait_for(lambda: any(asked(search).values()) or proc.poll() is not None, 300, "the first trial asked")
        assert proc.poll() is None, "the tuner ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    before = asked(search)
    assert any(before.values())
    # Its jobs run on in their own sessions (a lost tuner does not take them down): wait for them as a user would.
    wait_for(lambda: jobs_ended(search), 300, "the killed tuner's jobs to end")

    for _ in range(5):
        again = tune(tmp_path, KILLED)
        if again.returncode != 3:  # 3: some point still runs elsewhere; wait for it, then rerun
            break
        wait_for(lambda: jobs_ended(search), 300, "the jobs to end")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]

    after = asked(search)
    for arm, trials in before.items():  # what was asked before the kill is what ran, under the same numbers
        for number, params in trials.items():
            assert {k: after[arm][number][k] for k in params} == params, (arm, number)
    state = json.loads((search / "tune.json").read_text())
    assert state["equal_budgets"] and state["confirmed"]
    assert {a["spent_steps"] for a in state["arms"].values()} == {64 + 64 + 128}
    records = ledger(search)
    for arm in state["arms"].values():
        assert len(arm["trials"]) == 3 and arm["states"]["running"] == 0
        for t in arm["trials"]:
            assert t["state"] in ("complete", "pruned"), t  # every trial told
            record = records[t["run_id"]]
            assert record["attempts"] == len(t["values"]), (t["run_id"], record["attempts"])  # one job per rung
            steps = [int(r["global_step"]) for r in read_metrics(search / t["run_id"] / METRICS_FILE)]
            assert steps == sorted(set(steps)) and steps[-1] == t["steps"], (t["run_id"], steps)
    confirm_records = ledger(confirm)
    assert len(confirm_records) == 4 and all(r["status"] == "completed" for r in confirm_records.values())
