"""``rlsweep seeds``: more seeds only where a comparison is open, through the sweep's own launcher and ledger.

End to end on the maze through the real command lines, in subprocesses: a sweep of plain PPO and PPO + RND, plus
plain PPO under another ``critic_init`` launched into the same sweep (so the grid is unbalanced and the two
factors' comparisons share only the plain-PPO configuration). On ``motivation/int_reward_mean`` RND is above
plain PPO at every seed (plain PPO has no intrinsic reward), so AdaStop decides that comparison at the first
look; the two plain-PPO configurations are exactly equal (zero), so theirs stays open to the cap. Only the two
plain-PPO configurations may get seeds. Bad input is checked in-process on sweep directories written by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from procs import ENV, REPO, ledger, status

from rlsweep.launching.seeds import main as seeds_main
from rlsweep.lock import PointLock
from rlsweep.record import RunRecord, write_json_atomic

pytestmark = [pytest.mark.e2e]  # `rlsweep seeds` through the real command line

# One iteration of the demo's 8 envs x 64 steps: a run is mostly its process start.
SMALL = ["experiment=demo_maze", "budget.total_steps=512", "logger=none", "sweep_name=seq"]
NONE = "ppo_none_a-nir_false-ci_0.1-env_maze"
NONE_SQRT2 = "ppo_none_a-nir_false-ci_sqrt2-env_maze"
RND = "ppo_rnd_a0-env_maze"
INT = "motivation/int_reward_mean"
# alpha 0.4: with 2 seeds a side there are 6 permutations, and a first look can only reject at a level of at least
# 1/6 of the K=2 share (alpha/2); a real sweep has more seeds per look (README).
TEST = ["--metric", INT, "--alpha", "0.4", "--max-looks", "2"]


def sweep(cwd: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "sweep.py"), "-m", *args], cwd=cwd, capture_output=True,
                          text=True, env=ENV, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def seeds(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.launching.cli", "seeds", *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


def test_seeds_go_only_to_open_comparisons_and_the_next_look_uses_them(tmp_path: Path) -> None:
    sweep(tmp_path, *SMALL, "motivation=none,rnd", "seed=1,2")
    sweep(tmp_path, *SMALL, "motivation=none", "critic_init=sqrt2", "seed=1,2")
    sweep_dir = tmp_path / "sweeps" / "seq"
    launched = (sweep_dir / "sweep.json").read_text()
    before = set(ledger(sweep_dir))
    assert before == {f"{c}-s{s}" for c in (NONE, NONE_SQRT2, RND) for s in (1, 2)}

    # The default metric on the maze is the cells visited; a dry run names each comparison and its decision.
    dry = seeds(tmp_path, "sweeps/seq", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "metric explore/cells" in dry.stdout
    assert "motivation=rnd vs motivation=none [critic_init=0.1]: continue" in dry.stdout
    assert "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]: continue" in dry.stdout
    assert "would add, for look 2" in dry.stdout and "6 run(s) in all" in dry.stdout

    dry = seeds(tmp_path, "sweeps/seq", "--dry-run", *TEST)
    assert dry.returncode == 0, dry.stderr
    assert "motivation=rnd vs motivation=none [critic_init=0.1]: larger; decided at look 1 of 2" in dry.stdout
    assert "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]: continue; open after look 1 of 2" in dry.stdout
    assert f"  {NONE}: seed(s) 3, 4\n  {NONE_SQRT2}: seed(s) 3, 4\n" in dry.stdout
    assert f"4 run(s) in all; no seeds for 1 decided configuration(s): {RND}" in dry.stdout
    assert set(ledger(sweep_dir)) == before and not (sweep_dir / "seeds.json").exists()  # nothing started

    real = seeds(tmp_path, "sweeps/seq", *TEST)
    assert real.returncode == 0, real.stdout[-3000:] + real.stderr[-3000:]
    records = ledger(sweep_dir)
    added = set(records) - before
    assert added == {f"{c}-s{s}" for c in (NONE, NONE_SQRT2) for s in (3, 4)}
    for run_id in added:  # new points of the same sweep, by its launcher, with the configuration's own settings
        r = records[run_id]
        assert (r["status"], r["launcher"], r["sweep"], r["total_steps"]) == ("completed", "local", "seq", 512)
    table = status(sweep_dir)
    assert f"{NONE_SQRT2}-s4" in table and f"{RND}-s3" not in table and "10 completed" in table
    assert (sweep_dir / "sweep.json").read_text() == launched  # rerunning the sweep's command stays what it was

    state = json.loads((sweep_dir / "seeds.json").read_text())
    assert [look["index"] for look in state["looks"]] == [1, 2]
    assert state["looks"][1]["seeds"] == {NONE: [1, 2, 3, 4], NONE_SQRT2: [1, 2, 3, 4]}  # the second look used them
    assert state["decisions"] == {
        "motivation=rnd vs motivation=none [critic_init=0.1]": "larger",
        "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]": "equal",  # open to the cap of 2 looks
    }
    assert state["status"] == "cap reached" and state["batches"][0]["for_look"] == 2
    # The report shows the test's decisions beside its descriptive intervals.
    from rlsweep.analysis.report import write_report

    md = (write_report(sweep_dir).parent / "summary.md").read_text()
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert "Sequential test (rlsweep seeds: AdaStop" in answer and "2 of at most 2 looks" in answer
    assert "- motivation=rnd vs motivation=none [critic_init=0.1]: larger" in answer

    # Everything decided: a rerun (settings from seeds.json) replays the same looks and adds nothing.
    again = seeds(tmp_path, "sweeps/seq")
    assert again.returncode == 0, again.stderr
    assert "every comparison is decided (larger=1, equal=1); no seeds to add" in again.stdout
    assert set(ledger(sweep_dir)) == before | added
    assert json.loads((sweep_dir / "seeds.json").read_text())["looks"] == state["looks"]
    # Changing the test after it began would void its error control: refused.
    changed = seeds(tmp_path, "sweeps/seq", "--alpha", "0.05")
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1
    assert "--alpha=0.05 differs from the 0.4 this sweep's test began with" in changed.stderr


def fake_sweep(root: Path, runs: dict[str, tuple[dict[str, str], int]], status: str = "completed") -> Path:
    """A sweep directory as the launcher leaves it: sweep.json, and per run its record and metrics."""
    sweep_dir = root / "sweeps" / "fake"
    sweep_dir.mkdir(parents=True)
    write_json_atomic(sweep_dir / "sweep.json", {"command": "sweep.py -m", "launcher": "local", "points": len(runs)})
    for run_id, (choices, seed) in runs.items():
        run_dir = sweep_dir / run_id
        run_dir.mkdir()
        RunRecord(run_id=run_id, name=run_id.rsplit("-s", 1)[0], seed=seed, sweep="fake", choices=choices,
                  total_steps=64, global_step=64, run_dir=str(run_dir), status=status).write()  # fmt: skip
        lines = [{"global_step": 64 * i, "explore/cells": float(seed + i)} for i in (1, 2)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return sweep_dir


GRID = {f"{m}-s{s}": ({"motivation": m, "env": "maze"}, s) for m in ("none", "rnd") for s in (1, 2)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "ep/nope"], "--metric=ep/nope is not logged by this sweep's runs; allowed: explore/cells"),
        (["--baseline", "model=A"], "--baseline=model=A: unknown factor model; allowed: motivation"),
        (["--baseline", "motivation=x"], "--baseline=motivation=x: unknown level x of motivation; allowed: none, rnd"),
        (["--alpha", "1.5"], "--alpha=1.5: alpha must be in (0, 1)"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sweep_dir = fake_sweep(tmp_path, GRID)
    assert seeds_main([str(sweep_dir), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlsweep seeds: error: " + message) and err.count("\n") == 1, err
    assert not (sweep_dir / "seeds.json").exists()


def test_bad_sweeps_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert seeds_main([str(tmp_path)]) == 2
    assert f"sweep_dir={tmp_path} is not a launched sweep (no sweep.json)" in capsys.readouterr().err

    one = fake_sweep(tmp_path / "one", {f"none-s{s}": ({"motivation": "none"}, s) for s in (1, 2)})
    assert seeds_main([str(one)]) == 2
    assert "no factor varies" in capsys.readouterr().err

    # A seed still running (its point's lock held by a live process): its value would be missing from the look.
    busy = fake_sweep(tmp_path / "busy", GRID)
    RunRecord.read(busy / "rnd-s2").update(status="running", pid=os.getpid())
    lock = PointLock(busy / "rnd-s2")
    lock.acquire()
    try:
        assert seeds_main([str(busy), "--dry-run"]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "run=rnd-s2 is still running or queued (1 run(s) in all); allowed: rerun rlsweep seeds once" in err
    assert err.count("\n") == 1
