"""``rlsweep tune``'s input and bookkeeping, in this process: the tune file and every bad input (one line, exit 2,
nothing started), and the successive halving and equal-budget accounting on studies fed values by hand."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rlsweep.cli.tune import main as tune_main
from rlsweep.tuning.space import BadSpace, available, load_spec, parse_spec, rung_budgets
from rlsweep.tuning.study import STEPS, RungPruner, accounting, distributions, report_rung, rung_of, set_attr

REPO = Path(__file__).resolve().parents[2]
GRID = ["motivation=none,rnd", "env=fake", "budget=smoke", "debug=smoke", "logger=none", "tune=smoke"]


def test_the_package_tune_files_parse_and_command_line_settings_apply() -> None:
    assert {"smoke", "maze_lr"} <= set(available())
    spec = load_spec("maze_lr", ["tune.trials=4", "tune.space.ppo.clip_coef={uniform: [0.1, 0.3]}"])
    assert spec.trials == 4 and spec.metric == "explore/cells"
    kinds = {p.key: (p.kind, p.values) for p in spec.params}
    assert kinds["ppo.learning_rate"] == ("log_uniform", (1e-5, 1e-3))
    assert kinds["ppo.clip_coef"] == ("uniform", (0.1, 0.3))
    assert spec.budgets() == [1_000_000, 2_000_000]
    assert rung_budgets(128, 3, 2) == [32, 64, 128]
    # YAML 1.1 reads 1e-5 (no dot) as a string: it is taken as the number it means.
    spec = load_spec("smoke", ["tune.space.ppo.learning_rate={log_uniform: [1e-5, 1e-3]}"])
    assert next(p for p in spec.params if p.key == "ppo.learning_rate").values == (1e-5, 1e-3)


def test_the_readmes_tune_demo_plans_two_arms_that_can_reach_a_verdict_on_fresh_seeds() -> None:
    """The README's CPU demo of rlsweep tune, as written there: two arms, the same rungs for both (each a whole number
    of the demo's iterations), and enough fresh seeds that the confirm runs' permutation test can decide at all."""
    import shlex
    from math import comb

    from rlsweep.tuning.tuner import setup

    line = next(x for x in (REPO / "README.md").read_text().splitlines() if x.startswith("rlsweep tune "))
    words = shlex.split(line.partition("&&")[0])[2:]
    name = next(w.partition("=")[2] for w in words if w.startswith("tune="))
    spec = load_spec(name)
    s = setup([w for w in words if not w.startswith(("tune=", "sweep_name="))], spec, [], None)
    assert [a.label for a in s.arms] == ["motivation=none", "motivation=rnd"]
    iteration = 8 * 64  # experiment=demo_maze: ppo.num_envs x ppo.num_steps
    assert spec.budgets() == [8192, 16384] and all(b % iteration == 0 for b in spec.budgets())
    # The smallest two-sided p of an exact permutation test of n against n seeds is 2 / C(2n, n): below 0.05 at 4.
    assert 2 / comb(2 * spec.fresh_seeds, spec.fresh_seeds) < 0.05
    assert not set(s.fresh_seeds()) & {s.trial_seed(n) for n in range(spec.trials)}


def test_a_users_config_dir_adds_tune_files(tmp_path: Path) -> None:
    (tmp_path / "tune").mkdir()
    space = "space:\n  ppo.update_epochs: {int: [1, 4]}\n  ppo.normalize_advantages: {choice: [true, false]}\n"
    (tmp_path / "tune" / "mine.yaml").write_text(space + "trials: 2\n")
    spec = load_spec("mine", folders=[tmp_path])
    kinds = [(p.key, p.kind) for p in spec.params]
    assert kinds == [("ppo.update_epochs", "int"), ("ppo.normalize_advantages", "choice")]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["tune.space.ppo.learning_rate={uniform: [0.1, 0.1]}"],
         ["tune.space.ppo.learning_rate={uniform: [0.1, 0.1]}", "empty range", "allowed: uniform: [low, high]"]),
        (["tune.space.ppo.learning_rate={log_uniform: [0, 0.001]}"],
         ["tune.space.ppo.learning_rate={log_uniform: [0, 0.001]}", "bound <= 0", "allowed: log_uniform"]),
        (["tune.space.ppo.learning_rate={log_uniform: [-1.0, 0.001]}"], ["bound <= 0", "0 < low < high"]),
        (["tune.space.ppo.update_epochs={int: [1.5, 4]}"], ["tune.space.ppo.update_epochs", "allowed: int: [low"]),
        (["tune.space.ppo.normalize_advantages={choice: [true]}"],
         ["tune.space.ppo.normalize_advantages", "two or more distinct"]),
        (["tune.space.ppo.lr={uniform: [0.1, 0.2]}"], ["tune.space.ppo.lr", "ppo.learning_rate"]),
        (["tune.space.ppo.learning_rate={normal: [0, 1]}"], ["not a distribution", "allowed: one of log_uniform"]),
        (["tune.space.ppo.learning_rate={uniform: [-1.0, 0.1]}"], ["tune.space.ppo.learning_rate", "-1"]),
        (["tune.space.seed={int: [1, 9]}"], ["tune.space.seed", "set by the tuner"]),
        (["tune.trials=0"], ["tune.trials=0", "allowed: an integer >= 1"]),
        (["tune.trails=3"], ["tune.trails=3", "unknown setting", "allowed: space, trials"]),
        (["tune.direction=up"], ["tune.direction='up'", "allowed: maximize, minimize"]),
        (["tune.steps=2", "tune.rungs=3"], ["tune.steps=2", "allowed: steps >= 4"]),
        (["tune=nope"], ["tune=nope", "no such tune file", "allowed:", "smoke"]),
        (["ppo.ent_coef=0.01,0.02"], ["tune.space.ppo.ent_coef", "also swept as an arm"]),
        (["ppo.ent_coef=0.02"], ["tune.space.ppo.ent_coef", "also set on the command line"]),
        (["seed=1,2"], ["seed", "allowed instead: tune.trials, tune.fresh_seeds"]),
        (["budget.total_steps=512"], ["budget.total_steps", "tune.steps"]),
        (["motivation=nope"], ["motivation=nope", "allowed"]),
        # the tuner halves on each rung's values, so its launcher must wait for them (checked before any submission)
        (["hydra/launcher=slurm", "hydra.launcher.wait=false"],
         ["hydra.launcher.wait=false", "waits for its trials", "allowed: hydra.launcher.wait=true"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_anything_starts(
    extra: list[str],
    words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    grid = [g for g in GRID if not (g.startswith("tune=") and any(e.startswith("tune=") for e in extra))]
    assert tune_main([*grid, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlsweep tune: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "sweeps").exists()  # nothing started, nothing written


def test_a_missing_tune_file_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert tune_main(GRID[:-1]) == 2
    assert "tune=<name> is missing; allowed: " in capsys.readouterr().err


def test_parse_spec_refuses_an_empty_space() -> None:
    with pytest.raises(BadSpace, match=r"^tune.space=\{\}: nothing to tune; allowed: "):
        parse_spec("x", "x.yaml", {"space": {}})


# ---------------------------------------------------------------------------------------------------- halving


def _study(budgets: list[int], reduction: int = 2) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=RungPruner(budgets, reduction))


def _ask(study: optuna.Study, n: int) -> list[int]:
    spec = load_spec("smoke")
    return [study.ask(distributions(spec.params)).number for _ in range(n)]


def _feed(study: optuna.Study, budgets: list[int], values_by_rung: list[dict[int, float]]) -> list[dict[int, str]]:
    """Play the tuner's rounds: each rung's values for the live trials, steps trained recorded as the tuner does."""
    out = []
    for rung, values in enumerate(values_by_rung):
        for n in values:
            set_attr(study, n, STEPS, budgets[rung])
        out.append(report_rung(study, values, budgets, rung))
    return out


def test_halving_is_synchronous_keeps_the_best_fraction_and_ignores_call_order() -> None:
    budgets = [64, 128, 256]
    study = _study(budgets)
    assert _ask(study, 4) == [0, 1, 2, 3]
    # Rung 1: the worst value reported first would survive an asynchronous rule (ASHA promotes the first trial of a
    # rung); here all four values are seen before any decision.
    decided = _feed(study, budgets, [{0: 1.0, 1: 5.0, 2: 3.0, 3: 4.0}])[0]
    assert decided == {0: "pruned", 1: "continue", 2: "pruned", 3: "continue"}
    live = study.get_trials(states=(TrialState.RUNNING,))
    assert [t.number for t in live] == [1, 3] and {rung_of(t, budgets) for t in live} == {1}
    decided = _feed(study, budgets, [{}, {1: 2.0, 3: 6.0}])[1]
    assert decided == {1: "pruned", 3: "continue"}
    assert _feed(study, budgets, [{}, {}, {3: 7.0}])[2] == {3: "complete"}
    a = accounting(study)
    assert a["states"] == {"complete": 1, "pruned": 3, "fail": 0, "running": 0}
    assert a["best"]["number"] == 3 and a["best"]["value"] == 7.0
    assert a["spent_steps"] == 64 + 64 + 128 + 256  # t0, t2 at rung 1; t1 at rung 2; t3 to the end
    assert a["trials"][1]["values"] == [[64, 5.0], [128, 2.0]] and a["trials"][1]["state"] == "pruned"


def test_arms_with_the_same_trials_spend_the_same_steps_whatever_their_values() -> None:
    budgets = [100, 200]
    spent = []
    for values in ({0: 9.0, 1: 1.0, 2: 5.0}, {0: -3.0, 1: 0.0, 2: 8.0}):
        study = _study(budgets)
        _ask(study, 3)
        first = _feed(study, budgets, [values])[0]
        kept = [n for n, d in first.items() if d == "continue"]
        assert len(kept) == 1  # max(1, 3 // 2)
        _feed(study, budgets, [{}, {n: 1.0 for n in kept}])
        spent.append(accounting(study)["spent_steps"])
    assert spent == [2 * 100 + 200, 2 * 100 + 200]  # two pruned at 100 steps, one trained on to 200


def test_a_resumed_rung_reports_once_and_decides_the_same() -> None:
    budgets = [10, 20]
    study = _study(budgets)
    _ask(study, 2)
    # A tuner stopped after reporting t0 and before deciding: the rerun reports both again (the repeat is ignored).
    optuna.Trial(study, study.trials[0]._trial_id).report(3.0, 10)
    with pytest.warns(UserWarning, match="already reported"):
        decided = report_rung(study, {0: 3.0, 1: 1.0}, budgets, 0)
    assert decided == {0: "continue", 1: "pruned"}
    assert study.trials[0].intermediate_values == {10: 3.0}


@pytest.mark.parametrize(("pruner", "kept"), [(RungPruner([64, 128], 2, batch=2), "continue"),
                                              (RungPruner([64, 128], 2), "pruned")])  # fmt: skip
def test_each_batch_is_halved_on_its_own_so_the_steps_spent_depend_on_counts_only(
    pruner: RungPruner, kept: str
) -> None:
    """tune.batch=2, three trials: (t0, t1), then t2 alone. The pruner with the batch keeps t2 whatever it scores (its
    batch of one keeps max(1, 1 // 2) = 1); ranked against every earlier trial (batch=0: one batch of all), t2 would
    go on only where it beat them, so two arms with the same trials would spend different steps."""
    budgets = [64, 128]
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _ask(study, 2)
    assert _feed(study, budgets, [{0: 5.0, 1: 1.0}])[0] == {0: "continue", 1: "pruned"}
    _feed(study, budgets, [{}, {0: 6.0}])
    _ask(study, 1)
    assert _feed(study, budgets, [{2: 0.5}])[0] == {2: kept}  # worse than both trials of the first batch
