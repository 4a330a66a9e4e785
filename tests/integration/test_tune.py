"""``rlsweep tune`` end to end through the real command line: two arms (plain PPO, PPO + RND) on the fake env, three
trials each over two rungs, then each arm's chosen setting on fresh seeds in the confirm sweep; a second invocation
starts nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from procs import ENV, ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GRID = ["motivation=none,rnd", "env=fake", "budget=smoke", "debug=smoke", "logger=none", "tune=smoke",
        "tune.trials=3", "tune.rungs=2", "sweep_name=tt"]  # fmt: skip


def tune(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "tune", *GRID], cwd=cwd,
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
