"""``rlsweep tune``'s fault paths end to end, through the real command line on the fake env: a trial that diverges is
failed with its reason while the search goes on; a second tuner on a sweep whose tune lock is held is refused and
touches nothing; batches of trials are halved batch by batch with equal budgets per arm; a tuner stopped between two
asks of a batch asks the rest before it launches any; and a tune on the real one-node SLURM, whose launcher must
wait (``hydra.launcher.wait=false`` is refused before anything is submitted).

A tuner stopped anywhere else, resumed, is tests/integration/test_tune.py's."""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from procs import ENV, SLURM, ledger, slurm, stop_leftovers

from rlsweep.tuning.space import TuneSpec, load_spec
from rlsweep.tuning.study import JOURNAL_FILE, RUN_ID, SEED, distributions, open_study, set_attr, storage_for
from rlsweep.tuning.tuner import only_one, setup

pytestmark = [pytest.mark.e2e]

TINY = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]
# tune=smoke at its smallest that still halves: rungs at 64 and 128 agent steps (one and two iterations), and one
# confirm run per arm of one iteration.
SMALL = ["tune=smoke", "tune.fresh_seeds=1", "tune.confirm_steps=64"]


def tune(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "tune", *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout[-3000:] + proc.stderr[-3000:]


def trials(search: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Per arm (study), its trials as the journal has them, by number."""
    storage = storage_for(search, "journal")
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).get_trials(deepcopy=False)
            for s in storage.get_all_studies()}  # fmt: skip


def rounds(stdout: str) -> list[str]:
    """The tuner's rounds as it announced them: 'rung 1 of 2: 4 trial(s) to 64'."""
    return re.findall(r"^\[rlsweep\] (rung .*) agent steps$", stdout, flags=re.MULTILINE)


def arm_names(grid: list[str], spec: TuneSpec) -> list[str]:
    """The arms' names (their studies' names) as the tuner plans them: in this process, starting nothing."""
    return [arm.name for arm in setup(grid, spec, [], None).arms]


# ------------------------------------------------------------------------------------------- a diverged trial

# ppo.vf_coef=1e30 makes the first update's gradient norm overflow: the run stops with a DivergenceError at
# iteration 1, every time, whatever the seed (0.5 is the default).
DIVERGE = """space:
  ppo.vf_coef: {choice: [0.5, 1.0e30]}
trials: 3
steps: 128
rungs: 2
reduction: 2
fresh_seeds: 1
confirm_steps: 64
metric: loss/entropy
"""


def first_batch(arm: str, spec: TuneSpec) -> list[dict[str, Any]]:
    """The params the tuner's first round asks of ``arm``'s fresh study: the same sampler, seeded the same way
    (:func:`rlsweep.tuning.study.open_study`), asked the same number of times, on a study in memory."""
    study = open_study(optuna.storages.InMemoryStorage(), arm, spec)
    return [study.ask(distributions(spec.params)).params for _ in range(spec.batch_size())]


def test_a_diverged_trial_is_failed_with_its_reason_and_the_search_goes_on(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "tune").mkdir(parents=True)
    (conf / "tune" / "diverge.yaml").write_text(DIVERGE)
    arms = ["motivation=none", *TINY]
    grid = [*arms, "tune=diverge", "sweep_name=td", "--config-dir", str(conf)]
    # Not left to chance: the first sampler seed whose first round has exactly one absurd value of three, found by
    # asking the tuner's own sampler, so the rung has a trial that fails, one that is pruned and one that goes on.
    (arm,) = arm_names(arms, load_spec("diverge", folders=[conf]))

    def with_seed(k: int) -> TuneSpec:
        return load_spec("diverge", [f"tune.sampler_seed={k}"], [conf])

    batches = ((k, first_batch(arm, with_seed(k))) for k in range(200))
    seed, expected = next((k, asked) for k, asked in batches if [p["ppo.vf_coef"] for p in asked].count(1e30) == 1)
    (bad,) = [n for n, p in enumerate(expected) if p["ppo.vf_coef"] == 1e30]

    first = tune(tmp_path, *grid, f"tune.sampler_seed={seed}")
    assert first.returncode == 0, shown(first)
    search, confirm = tmp_path / "sweeps" / "td", tmp_path / "sweeps" / "td-confirm"
    run_id = f"{arm}-t{bad}-s{bad + 1}"
    assert f"[rlsweep] {run_id}: failed (DivergenceError: non-finite " in first.stdout
    assert "told FAIL, the search goes on" in first.stdout
    assert rounds(first.stdout) == ["rung 1 of 2: 3 trial(s) to 64", "rung 2 of 2: 1 trial(s) to 128"]

    # The study: the diverged trial FAIL with the run's error as its reason; the others decided by the halving.
    (study,) = trials(search).values()
    assert [t.params for t in study] == expected
    failed = study[bad]
    assert failed.state == optuna.trial.TrialState.FAIL and failed.intermediate_values == {}
    assert failed.user_attrs["reason"].startswith("DivergenceError: non-finite ")
    assert "at iteration 1" in failed.user_attrs["reason"]
    others = {t.state.name: t for t in study if t.number != bad}
    assert set(others) == {"COMPLETE", "PRUNED"}
    assert set(others["COMPLETE"].intermediate_values) == {64, 128}
    assert set(others["PRUNED"].intermediate_values) == {64}
    records = ledger(search)
    assert records[run_id]["status"] == "failed" and records[run_id]["error"] == failed.user_attrs["reason"]

    # tune.json: the failure's steps (none trained) count, the search finished and its best was confirmed.
    state = json.loads((search / "tune.json").read_text())
    (found,) = state["arms"].values()
    assert found["states"] == {"complete": 1, "pruned": 1, "fail": 1, "running": 0}
    assert found["spent_steps"] == 64 + 128 + 0 and state["confirmed"]
    assert found["best"]["params"] == {"ppo.vf_coef": 0.5}
    (confirmed,) = ledger(confirm).values()
    assert confirmed["status"] == "completed" and confirmed["seed"] == 1000
    assert "vf_coef: 0.5" in (confirm / confirmed["run_id"] / "config.yaml").read_text()

    # Run again: nothing is launched, the diverged trial least of all (told FAIL is final).
    again = tune(tmp_path, *grid, f"tune.sampler_seed={seed}")
    assert again.returncode == 0, shown(again)
    assert rounds(again.stdout) == [] and ledger(search)[run_id]["attempts"] == 1

    # The report of the search sweep: the trial failed, with its reason, in the Tuning section.
    report = subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "report", str(search)], cwd=tmp_path,
                            capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    summary = (search / "report" / "summary.md").read_text()
    section = summary[summary.index("## Tuning") : summary.index("## Method")]
    row = next(line for line in section.splitlines() if f"| {run_id} |" in line)
    assert "failed: DivergenceError: non-finite " in row and "at iteration 1" in row, row
    assert "complete (chosen)" in section and "pruned after rung 1" in section


# ------------------------------------------------------------------------------------------- the tune lock

# Holds the sweep's tune lock as a tuner does (tuner.only_one), says so on stdout, and keeps it until stdin closes.
HOLD = """import sys
from pathlib import Path
from rlsweep.tuning.tuner import only_one
with only_one(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root`` with its size and content (a lock file's mtime is its holder's heartbeat, which
    ticks on its own, so mtimes are not compared)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): (p.stat().st_size, p.read_bytes()) for p in files}


def test_a_second_tuner_on_a_locked_sweep_is_refused_in_one_line_and_touches_nothing(tmp_path: Path) -> None:
    search = tmp_path / "sweeps" / "tl"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(search)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdin is not None
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        assert ready and holder.stdout.readline() == "held\n", "the holder did not take the tune lock"
        before = tree(tmp_path)
        assert list(before) == ["sweeps/tl/.tune/.lock-1.json"]

        second = tune(tmp_path, "motivation=none,rnd", *TINY, *SMALL, "sweep_name=tl")
        assert second.returncode == 3, shown(second)
        assert second.stdout == "" and second.stderr.count("\n") == 1, shown(second)
        assert re.fullmatch(f"rlsweep tune: another rlsweep tune runs on tl \\(pid {holder.pid} on "
                            f"{re.escape(socket.gethostname())}, heartbeat \\d+ s ago\\); wait for it to end, then "
                            "rerun\n", second.stderr), shown(second)  # fmt: skip
        assert tree(tmp_path) == before  # no journal, tune.json, trial or confirm sweep: nothing started
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with only_one(search):  # released by its holder: the refusal was the holder's, not a lock left behind
        pass


# ------------------------------------------------------------------------------------------------- batches


@pytest.mark.slow
def test_batches_are_asked_one_after_another_and_halved_each_on_its_own_with_equal_budgets(tmp_path: Path) -> None:
    """Three trials per arm in batches of two: (t0, t1) through both rungs, then t2 alone through both. Each batch is
    halved on its own, so t2 goes on whatever t0 and t1 scored, and both arms spend the same steps."""
    grid = ["motivation=none,rnd", *TINY, *SMALL, "tune.trials=3", "tune.batch=2", "sweep_name=tb"]
    proc = tune(tmp_path, *grid)
    assert proc.returncode == 0, shown(proc)
    assert rounds(proc.stdout) == ["rung 1 of 2: 4 trial(s) to 64", "rung 2 of 2: 2 trial(s) to 128",
                                   "rung 1 of 2: 2 trial(s) to 64", "rung 2 of 2: 2 trial(s) to 128"]  # fmt: skip
    assert "[rlsweep] equal budgets: yes, 320 agent steps per arm" in proc.stdout
    search = tmp_path / "sweeps" / "tb"
    state = json.loads((search / "tune.json").read_text())
    assert state["equal_budgets"] and state["confirmed"] and state["spec"]["batch"] == 2
    studies = trials(search)
    assert set(studies) == set(state["arms"]) and len(studies) == 2
    for name, arm in state["arms"].items():
        by_number = {t["number"]: t for t in arm["trials"]}
        assert sorted(by_number) == [0, 1, 2]
        assert arm["spent_steps"] == 64 + 2 * 128  # the pruned trial at rung 1; one per batch on to rung 2
        assert arm["states"] == {"complete": 2, "pruned": 1, "fail": 0, "running": 0}
        assert sorted(by_number[n]["state"] for n in (0, 1)) == ["complete", "pruned"]
        assert by_number[2]["state"] == "complete" and [s for s, _ in by_number[2]["values"]] == [64, 128]
        # The second batch was asked once the first was told, so TPE sampled it knowing the first's values.
        t0, t1, t2 = studies[name]
        assert t0.datetime_complete and t1.datetime_complete and t2.datetime_start
        assert t2.datetime_start > max(t0.datetime_complete, t1.datetime_complete)
        assert arm["best"]["number"] in (0, 1, 2) and arm["best"]["value"] == max(
            t["value"] for t in arm["trials"] if t["state"] == "complete")  # fmt: skip


@pytest.mark.slow
def test_a_tuner_stopped_between_two_asks_of_a_batch_asks_the_rest_before_it_launches_any(tmp_path: Path) -> None:
    """The journal as a tuner SIGKILLed between its first and second ask leaves it (one trial asked, with its run id
    and seed, nothing launched): the rerun asks the second trial and halves the two as one batch, instead of
    running the first alone (which would go on unopposed) and the second in a batch of its own."""
    arms = ["motivation=none", *TINY]
    grid = [*arms, *SMALL, "tune.trials=2", "sweep_name=tq"]
    spec = load_spec("smoke", [g for g in grid if g.startswith("tune.")])
    (arm,) = arm_names(arms, spec)
    search = tmp_path / "sweeps" / "tq"
    search.mkdir(parents=True)
    study = open_study(storage_for(search, "journal"), arm, spec)
    t0 = study.ask(distributions(spec.params))
    set_attr(study, t0.number, RUN_ID, f"{arm}-t0-s1")
    set_attr(study, t0.number, SEED, 1)
    assert (search / JOURNAL_FILE).exists() and not ledger(search)

    proc = tune(tmp_path, *grid)
    assert proc.returncode == 0, shown(proc)
    assert rounds(proc.stdout) == ["rung 1 of 2: 2 trial(s) to 64", "rung 2 of 2: 1 trial(s) to 128"]
    (told,) = trials(search).values()
    assert len(told) == 2 and told[0].params == t0.params  # the first trial kept its number and params
    assert sorted(t.state.name for t in told) == ["COMPLETE", "PRUNED"]
    assert {r["attempts"] for r in ledger(search).values()} <= {1, 2} and len(ledger(search)) == 2


# ------------------------------------------------------------------------------------------------- SLURM


@pytest.fixture
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


def queued() -> str:
    return subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, timeout=60).stdout


@pytest.mark.slurm
@slurm
@pytest.mark.usefixtures("_no_leftovers")
def test_a_tune_on_slurm_runs_every_trial_as_a_slurm_job_and_refuses_wait_false(tmp_path: Path) -> None:
    grid = ["motivation=none", *TINY, *SMALL, "tune.trials=2", "sweep_name=ts", *SLURM]
    # wait=false first: one line and exit 2, before anything is written or submitted (a submission writes its job
    # folder into the sweep directory first; the queue itself is shared with other tests, so it is not compared).
    nowait = tune(tmp_path, *grid, "hydra.launcher.wait=false")
    assert nowait.returncode == 2 and nowait.stdout == "" and nowait.stderr.count("\n") == 1, shown(nowait)
    assert nowait.stderr.startswith("rlsweep tune: error: hydra.launcher.wait=false: ")
    assert "allowed: hydra.launcher.wait=true" in nowait.stderr
    assert not (tmp_path / "sweeps").exists()

    proc = tune(tmp_path, *grid)
    assert proc.returncode == 0, shown(proc)
    assert rounds(proc.stdout) == ["rung 1 of 2: 2 trial(s) to 64", "rung 2 of 2: 1 trial(s) to 128"]
    assert proc.stdout.count("as SLURM array") == 3  # one array per round, and one for the confirm run
    search, confirm = tmp_path / "sweeps" / "ts", tmp_path / "sweeps" / "ts-confirm"
    state = json.loads((search / "tune.json").read_text())
    assert state["confirmed"]
    (arm,) = state["arms"].values()
    records = {**ledger(search), **ledger(confirm)}
    assert len(records) == 3
    for t in arm["trials"]:  # a trial's record: each rung one SLURM job (an array of one task: no _<task>)
        record = records[t["run_id"]]
        assert record["status"] == "completed" and record["launcher"] == "slurm", record
        assert re.fullmatch(r"\d+(_\d+)?", str(record["job_id"])) and record["attempts"] == len(t["values"]), record
    (confirmed,) = ledger(confirm).values()
    assert confirmed["launcher"] == "slurm" and re.fullmatch(r"\d+(_\d+)?", str(confirmed["job_id"]))
    assert json.loads((search / "sweep.json").read_text())["launcher"] == "slurm"
    # The tuner moved on only once each round's jobs had ended: none of them trains on unseen in the queue.
    arrays = {str(r["job_id"]).split("_")[0] for r in records.values()}
    assert not arrays & {line.split()[0].split("_")[0] for line in queued().splitlines() if line.strip()}
