"""``rlsweep seeds``: more seeds only where a comparison is open, through the sweep's own launcher and ledger, and
every test it runs recorded in seeds.json before anything is launched.

End to end on the maze through the real command lines, in subprocesses: a sweep of plain PPO and PPO + RND, plus
plain PPO under another ``critic_init`` launched into the same sweep (so the grid is unbalanced and the two
factors' comparisons share only the plain-PPO configuration). On ``motivation/int_reward_mean`` RND is above
plain PPO at every seed (plain PPO has no intrinsic reward), so AdaStop decides that comparison at the first
look; the two plain-PPO configurations are exactly equal (zero), so theirs stays open to the cap. Only the two
plain-PPO configurations may get seeds. Pre-registration (a dry run fixes the test, other settings begin another,
recorded looks are binding), the dry run's power plan and bad input are checked in-process on sweep directories
written by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from procs import ENV, REPO, ledger, status

from rlsweep.analysis.sequential import ADASTOP_013, METHOD, Settings, load_tests
from rlsweep.analysis.verdicts import seeds_for_power
from rlsweep.cli.seeds import main as seeds_main
from rlsweep.rundir.lock import PointLock
from rlsweep.rundir.record import RunRecord, write_json_atomic

pytestmark = [pytest.mark.e2e]  # `rlsweep seeds` through the real command line

# One iteration of the demo's 8 envs x 64 steps: a run is mostly its process start.
SMALL = ["experiment=demo_maze", "budget.total_steps=512", "logger=none", "sweep_name=seq"]
NONE = "ppo_none_a-nir_false-ci_0.1-env_maze"
NONE_SQRT2 = "ppo_none_a-nir_false-ci_sqrt2-env_maze"
RND = "ppo_rnd_a0-env_maze"
INT = "motivation/int_reward_mean"
# alpha 0.4 over 2 comparisons, 0.2 each (Bonferroni), 3 seeds a side: the test is two-sided, so the observed
# arrangement and its mirror image are the two most extreme of C(6, 3) = 20, and the first of K=2 looks (0.2/2 = 0.1
# of them, 2 arrangements) can just reject; a real sweep has more seeds per look (docs/usage.md).
TEST = ["--metric", INT, "--alpha", "0.4", "--max-looks", "2"]


def sweep(cwd: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "sweep.py"), "-m", *args], cwd=cwd, capture_output=True,
                          text=True, env=ENV, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def seeds(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "seeds", *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


def test_seeds_go_only_to_open_comparisons_and_the_next_look_uses_them(tmp_path: Path) -> None:
    sweep(tmp_path, *SMALL, "motivation=none,rnd", "seed=1,2,3")
    sweep(tmp_path, *SMALL, "motivation=none", "critic_init=sqrt2", "seed=1,2,3")
    sweep_dir = tmp_path / "sweeps" / "seq"
    launched = (sweep_dir / "sweep.json").read_text()
    before = set(ledger(sweep_dir))
    assert before == {f"{c}-s{s}" for c in (NONE, NONE_SQRT2, RND) for s in (1, 2, 3)}

    # The default metric on the maze is the cells visited; a dry run names each comparison and its decision, and
    # fixes test 1 under the default settings.
    dry = seeds(tmp_path, "sweeps/seq", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "test 1, metric explore/cells" in dry.stdout and "[rlsweep] test 1 begins" in dry.stdout
    assert "motivation=rnd vs motivation=none [critic_init=0.1]: continue" in dry.stdout
    assert "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]: continue" in dry.stdout
    assert "80 % power at the effect seen" in dry.stdout
    assert "would add, for look 2" in dry.stdout and "9 run(s) in all" in dry.stdout

    dry = seeds(tmp_path, "sweeps/seq", "--dry-run", *TEST)
    assert dry.returncode == 0, dry.stderr
    begins = (f"[rlsweep] test 2 begins: --metric {INT} differs from test 1's explore/cells, --max-looks 2 from its "
              "5, --alpha 0.4 from its 0.05; test 1 and its looks stay in seeds.json and in the report\n")  # fmt: skip
    assert begins in dry.stdout
    assert "motivation=rnd vs motivation=none [critic_init=0.1]: larger; decided at look 1 of 2" in dry.stdout
    assert "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]: continue; open after look 1 of 2" in dry.stdout
    assert f"  {NONE}: seed(s) 4, 5, 6\n  {NONE_SQRT2}: seed(s) 4, 5, 6\n" in dry.stdout
    assert f"6 run(s) in all; no seeds for 1 decided configuration(s): {RND}" in dry.stdout
    assert set(ledger(sweep_dir)) == before  # nothing started, but both tests are recorded
    assert [(t.number, t.metric, len(t.looks)) for t in load_tests(sweep_dir)] == [(1, "explore/cells", 1), (2, INT, 1)]

    real = seeds(tmp_path, "sweeps/seq", *TEST)  # the settings of test 2: it goes on
    assert real.returncode == 0, real.stdout[-3000:] + real.stderr[-3000:]
    assert "[rlsweep] continuing test 2" in real.stdout
    records = ledger(sweep_dir)
    added = set(records) - before
    assert added == {f"{c}-s{s}" for c in (NONE, NONE_SQRT2) for s in (4, 5, 6)}
    for run_id in added:  # new points of the same sweep, by its launcher, with the configuration's own settings
        r = records[run_id]
        assert (r["status"], r["launcher"], r["sweep"], r["total_steps"]) == ("completed", "local", "seq", 512)
    table = status(sweep_dir)
    assert f"{NONE_SQRT2}-s6" in table and f"{RND}-s4" not in table and "15 completed" in table
    assert (sweep_dir / "sweep.json").read_text() == launched  # rerunning the sweep's command stays what it was

    state = json.loads((sweep_dir / "seeds.json").read_text())["tests"][1]
    assert state["number"] == 2 and [look["index"] for look in state["looks"]] == [1, 2]
    assert state["looks"][1]["seeds"] == {NONE: [1, 2, 3, 4, 5, 6], NONE_SQRT2: [1, 2, 3, 4, 5, 6]}  # it used them
    assert state["decisions"] == {
        "motivation=rnd vs motivation=none [critic_init=0.1]": "larger",
        "critic_init=sqrt2 vs critic_init=0.1 [motivation=none]": "equal",  # open to the cap of 2 looks
    }
    assert state["status"] == "cap reached" and state["batches"][0]["for_look"] == 2
    # The report lists every test and its decisions.
    from rlsweep.analysis.report import write_report

    md = (write_report(sweep_dir).parent / "summary.md").read_text()
    assert f"Sequential test 2 (rlsweep seeds, two-sided AdaStop): {INT}" in md
    assert "- motivation=rnd vs motivation=none [critic_init=0.1]: larger (decided at look 1)" in md
    # One decision rule: the answer's comparisons on explore/cells take the decision of the earliest test on that
    # metric (test 1, open after its one look), not a fixed-sample test of their own.
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in answer.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none"))
    assert ("; sequential test 1 of rlsweep seeds (two-sided AdaStop, family-wise α = 0.05 over 2 comparison(s) and "
            "up to 5 looks of 3 seed(s)), open after look 1 of 5: **not decided**") in line  # fmt: skip
    assert "2 comparisons take the decision of rlsweep seeds' sequential test" in answer

    # Everything decided: a rerun with no options continues test 2, replays the same looks and adds nothing.
    again = seeds(tmp_path, "sweeps/seq")
    assert again.returncode == 0, again.stderr
    assert "every comparison is decided (larger=1, equal=1); no seeds to add" in again.stdout
    assert set(ledger(sweep_dir)) == before | added
    assert json.loads((sweep_dir / "seeds.json").read_text())["tests"][1]["looks"] == state["looks"]
    # Another alpha is another test, recorded beside the others (a dry run: nothing more is launched).
    other = seeds(tmp_path, "sweeps/seq", "--alpha", "0.05", "--dry-run")
    assert other.returncode == 0, other.stderr
    assert ("[rlsweep] test 3 begins: --alpha 0.05 differs from test 2's 0.4; test 2 and its looks stay in "
            "seeds.json and in the report\n") in other.stdout  # fmt: skip
    assert [t.number for t in load_tests(sweep_dir)] == [1, 2, 3] and set(ledger(sweep_dir)) == before | added


def fake_sweep(
    root: Path,
    runs: dict[str, tuple[dict[str, str], int]],
    status: str = "completed",
    finals: dict[str, float] | None = None,
) -> Path:
    """A sweep directory as the launcher leaves it: sweep.json, and per run its record and metrics (``finals``: the
    run's value of explore/cells at both steps logged, so that it is its final performance; by default seed + step)."""
    sweep_dir = root / "sweeps" / "fake"
    sweep_dir.mkdir(parents=True)
    write_json_atomic(sweep_dir / "sweep.json", {"command": "sweep.py -m", "launcher": "local", "points": len(runs)})
    for run_id, (choices, seed) in runs.items():
        run_dir = sweep_dir / run_id
        run_dir.mkdir()
        RunRecord(run_id=run_id, name=run_id.rsplit("-s", 1)[0], seed=seed, sweep="fake", choices=choices,
                  total_steps=64, global_step=64, run_dir=str(run_dir), status=status).write()  # fmt: skip
        write_cells(run_dir, finals[run_id] if finals else None, seed)
    return sweep_dir


def write_cells(run_dir: Path, value: float | None, seed: int = 0) -> None:
    lines = [{"global_step": 64 * i, "explore/cells": float(seed + i) if value is None else value} for i in (1, 2)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def cells_sweep(root: Path, values: dict[str, list[float]]) -> Path:
    """A fake sweep over motivation whose runs (seeds 1, 2, ...) have these final values of explore/cells."""
    runs = {
        f"{m}-s{s}": ({"motivation": m, "env": "maze"}, s) for m, vs in values.items() for s in range(1, len(vs) + 1)
    }
    return fake_sweep(root, runs, finals={f"{m}-s{s}": v for m, vs in values.items() for s, v in enumerate(vs, 1)})


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

    # seeds.json is the record of every test run on the sweep: an unreadable one is refused, never replaced.
    (busy / "seeds.json").write_text("{not json")
    assert seeds_main([str(busy), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlsweep seeds: error: seeds.json={busy / 'seeds.json'} is unreadable (")
    assert err.count("\n") == 1
    assert "remove" not in err and (busy / "seeds.json").read_text() == "{not json"


# rnd above none at every seed: with 4 seeds a side (70 arrangements) one look at alpha 0.05 may reject 3 of them,
# the observed one and its mirror image among them, so K=1 decides rnd larger.
APART = {"none": [1.0, 2.0, 3.0, 4.0], "rnd": [11.0, 12.0, 13.0, 14.0]}
RND_VS_NONE = "motivation=rnd vs motivation=none"


def test_a_dry_run_fixes_the_test_and_other_settings_begin_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = cells_sweep(tmp_path, APART)
    assert seeds_main([str(sweep_dir), "--dry-run", "--max-looks", "1"]) == 0
    out = capsys.readouterr().out
    assert "[rlsweep] test 1 begins: its settings are fixed from now on (seeds.json)" in out
    assert f"{RND_VS_NONE}: larger; decided at look 1 of 1" in out
    (first,) = load_tests(sweep_dir)  # the dry run recorded the test and its look
    assert (first.number, first.method, first.metric) == (1, METHOD, "explore/cells")
    assert first.settings == Settings(4, 1, 0.05) and first.baselines == {"motivation": "none"}
    assert [lk["index"] for lk in first.looks] == [1] and first.decisions == {RND_VS_NONE: "larger"}
    assert first.status == "decided" and first.created is not None

    # Other settings: a new test, said in one line; test 1 stays as it was.
    assert seeds_main([str(sweep_dir), "--dry-run", "--alpha", "0.1"]) == 0
    captured = capsys.readouterr()
    assert ("[rlsweep] test 2 begins: --alpha 0.1 differs from test 1's 0.05; test 1 and its looks stay in "
            "seeds.json and in the report\n") in captured.out  # fmt: skip
    tests = load_tests(sweep_dir)
    assert [(t.number, t.settings) for t in tests] == [(1, Settings(4, 1, 0.05)), (2, Settings(4, 1, 0.1))]
    assert tests[0].looks == first.looks
    # No options continue the latest test; the settings of test 1 continue test 1; neither begins a third.
    assert seeds_main([str(sweep_dir), "--dry-run"]) == 0
    assert "[rlsweep] continuing test 2" in capsys.readouterr().out
    assert seeds_main([str(sweep_dir), "--dry-run", "--alpha", "0.05"]) == 0
    assert "[rlsweep] continuing test 1: the settings given are its settings" in capsys.readouterr().out
    assert seeds_main([str(sweep_dir), "--dry-run", "--baseline", "motivation=rnd"]) == 0
    captured = capsys.readouterr()
    assert ("test 3 begins: --baseline motivation=rnd differs from test 1's motivation=none; test 1 and its looks "
            "stay") in captured.out  # fmt: skip
    assert [t.baselines for t in load_tests(sweep_dir)][2] == {"motivation": "rnd"}
    assert "remove" not in captured.out + captured.err and "delete" not in captured.out + captured.err


def test_a_recorded_look_stands_when_a_value_changed_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_dir = cells_sweep(tmp_path, APART)
    assert seeds_main([str(sweep_dir), "--dry-run", "--max-looks", "1"]) == 0
    # rnd's runs now read as none's (say they continued under a larger budget): replayed, look 1 finds nothing.
    for seed, value in enumerate(APART["none"], 1):
        write_cells(sweep_dir / f"rnd-s{seed}", value)
    capsys.readouterr()
    assert seeds_main([str(sweep_dir), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert (f"[rlsweep] warning: test 1, look 1: {RND_VS_NONE} now replays as equal, recorded larger in seeds.json: "
            "a run's value changed since; the recorded decision stands") in captured.err  # fmt: skip
    assert "the means of rnd (12.5 now 2.5) changed since it was recorded" in captured.err
    assert "[rlsweep] continuing test 1" in captured.out and f"{RND_VS_NONE}: larger" in captured.out
    (test,) = load_tests(sweep_dir)
    assert test.decisions == {RND_VS_NONE: "larger"} and test.looks[0]["means"]["rnd"] == 12.5
    assert test.data_changed.startswith(f"a run's value changed after look 1 was recorded ({RND_VS_NONE} now replays")
    # Recorded once, however often the test is replayed.
    events = json.loads((sweep_dir / "seeds.json").read_text())["tests"][0]["data_changed"]
    assert seeds_main([str(sweep_dir), "--dry-run"]) == 0
    assert json.loads((sweep_dir / "seeds.json").read_text())["tests"][0]["data_changed"] == events
    assert len(events) == 2  # the decision and the mean


def test_a_test_adastop_recorded_is_kept_and_not_continued(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_dir = cells_sweep(tmp_path, APART)
    # seeds.json as rlsweep seeds wrote it with adastop 0.1.3: one test, its settings at the top level.
    look = {"index": 1, "seeds": {"none": [1, 2, 3, 4], "rnd": [1, 2, 3, 4]}, "means": {"none": 2.5, "rnd": 12.5},
            "decisions": {RND_VS_NONE: "larger"}}  # fmt: skip
    old = {"test": ADASTOP_013, "metric": "explore/cells", "n": 4, "max_looks": 1, "alpha": 0.05,
           "permutations": 10000, "permutation_seed": 0, "baselines": {},
           "comparisons": [{"label": RND_VS_NONE, "factor": "motivation", "level": "rnd", "baseline": "none",
                            "context": {}, "configurations": ["rnd", "none"]}],
           "looks": [look], "decisions": {RND_VS_NONE: "larger"}, "status": "decided", "batches": [],
           "updated": 1.0}  # fmt: skip
    (sweep_dir / "seeds.json").write_text(json.dumps(old))
    assert seeds_main([str(sweep_dir), "--dry-run"]) == 0
    assert ("[rlsweep] test 2 begins: test 1 was run by adastop 0.1.3, whose boundary is one-sided (about twice its "
            "alpha); test 1 and its looks stay in seeds.json and in the report") in capsys.readouterr().out  # fmt: skip
    first, second = load_tests(sweep_dir)
    assert (first.number, first.method, first.looks, first.settings) == (1, ADASTOP_013, [look], Settings(4, 1, 0.05))
    assert (second.number, second.method, second.settings) == (2, METHOD, Settings(4, 1, 0.05))  # its settings go on


def test_a_dry_run_plans_the_seeds_80_percent_power_would_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two open comparisons (K=5: the first look spends 0.01 of 70 arrangements, none), none's spread sqrt(5/3) on
    # every side: rnd is none + 1.125, whose 95 % Welch interval (6 df, t = 2.447, SE = 0.913) is
    # [-1.109, 3.359] and contains 0; snd is none + 4, whose interval [1.766, 6.234] does not.
    none = [1.0, 2.0, 3.0, 4.0]
    sweep_dir = cells_sweep(tmp_path, {"none": none, "rnd": [v + 1.125 for v in none], "snd": [v + 4 for v in none]})
    assert seeds_main([str(sweep_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    sd, level = (5 / 3) ** 0.5, 0.05 / 2  # alpha / m, m = 2 comparisons (Bonferroni)
    assert ("[rlsweep] seeds per configuration, from every value so far (at alpha/2, each comparison's level in this "
            "test); the cap is 20") in out  # fmt: skip
    # the report's plan for an open comparison, word for word (verdicts.seed_plan)
    assert (f"  {RND_VS_NONE}: 80 % power at the effect seen (+1.12, pooled SD 1.29) needs "
            f"{seeds_for_power(1.125, sd, level)} seeds per configuration (no upper bound while its 95 % Welch "
            "interval [-1.11, 3.36] contains 0; planned at α = 0.025)\n") in out  # fmt: skip
    assert (f"  motivation=snd vs motivation=none: 80 % power at the effect seen (+4, pooled SD 1.29) needs "
            f"{seeds_for_power(4, sd, level)} seeds per configuration ({seeds_for_power(6.234, sd, level)} to "
            f"{seeds_for_power(1.766, sd, level)} over its 95 % Welch interval [1.77, 6.23]; planned at α = "
            "0.025)\n") in out  # fmt: skip
    assert "would add, for look 2" in out
