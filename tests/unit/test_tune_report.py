"""The report's "Tuning" section (:mod:`rlsweep.analysis.tuning`), from a hand-written ``tune.json``: which sweep the
report is about, every trial's state in words, the importances or why there are none, and the sensitivity figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlsweep.analysis.tuning import importances, read_tuning, section_figures, section_lines, section_tables

SPACE = {"ppo.learning_rate": ("log_uniform", [1e-5, 1e-3]), "ppo.update_epochs": ("choice", [1, 2, 4])}


def _trial(n: int, lr: float, epochs: int, values: list[list[Any]], state: str, **kw: Any) -> dict[str, Any]:
    value, steps = (values[-1][1] if state == "complete" else None), (values[-1][0] if values else 40)
    return {"number": n, "run_id": f"a-t{n}-s{n + 1}", "seed": n + 1, "state": state,
            "params": {"ppo.learning_rate": lr, "ppo.update_epochs": epochs}, "values": values, "value": value,
            "steps": steps, **kw}  # fmt: skip


def _state(search: Path, confirm: Path) -> dict[str, Any]:
    trials = [
        _trial(0, 1e-4, 1, [[64, 1.0], [128, 3.0]], "complete"),
        _trial(1, 5e-4, 2, [[64, 0.5]], "pruned"),
        _trial(2, 1e-3, 4, [], "fail", reason="DivergenceError: iteration 1: loss/value is nan"),
        _trial(3, 2e-5, 2, [[64, 0.2]], "pruned"),
    ]
    arm = {"label": "motivation=none", "overrides": [], "trials": trials, "spent_steps": 128 + 64 + 40 + 64,
           "states": {"complete": 1, "pruned": 2, "fail": 1, "running": 0},
           "best": {"number": 0, "params": trials[0]["params"], "value": 3.0}}  # fmt: skip
    return {"spec": {"metric": "explore/cells", "direction": "maximize"},
            "space": {k: {kind: v} for k, (kind, v) in SPACE.items()}, "budgets": [64, 128],
            "trial_seeds": [1, 2, 3, 4], "fresh_seeds": [1000], "search_dir": str(search), "confirm_dir": str(confirm),
            "confirmed": True, "equal_budgets": False, "arms": {"a": arm}}  # fmt: skip


def test_the_section_says_what_each_trial_did_from_either_sweep(tmp_path: Path) -> None:
    search, confirm = tmp_path / "s", tmp_path / "s-confirm"
    for d in (search, confirm):
        d.mkdir()
        (d / "tune.json").write_text(json.dumps(_state(search, confirm)))
    assert read_tuning(tmp_path) is None  # no tuner wrote here
    found = read_tuning(confirm)
    assert found is not None and found.role == "confirm" and found.search_dir == search
    searched = read_tuning(search)
    assert searched is not None and searched.role == "search"
    assert f"the confirm sweep of the search `{search}`" in section_lines(found)[0]
    assert section_lines(found)[-1].startswith("Equal budgets: NO (motivation=none 296 agent steps")
    tables = dict(section_tables(found))
    trials = tables["Trials of motivation=none (a)"]
    assert trials.header == ["trial", "run", "ppo.learning_rate", "ppo.update_epochs", "value at 64", "value at 128",
                             "steps", "state"]  # fmt: skip
    assert [r[-1] for r in trials.rows] == ["complete (chosen)", "pruned after rung 1",
                                            "failed: DivergenceError: iteration 1: loss/value is nan",
                                            "pruned after rung 1"]  # fmt: skip
    assert trials.classes == ["", "", "bad", ""]
    budget = tables["Steps spent and the chosen setting, per arm"]
    assert budget.rows == [["motivation=none", "4", "1", "2", "1", "296", "3", "ppo.learning_rate=0.0001 "
                            "ppo.update_epochs=1"]]  # fmt: skip
    importance = tables["Hyperparameter importance (share of the first rung's variance, per arm)"].rows[0]
    how = "fANOVA (Optuna, seed 0) on the value at the first rung (64 agent steps) of 3"
    assert importance[0] == "motivation=none" and importance[-1].startswith(how)
    assert abs(sum(float(x) for x in importance[1:3]) - 1.0) < 0.02  # shares of the variance
    (path,) = [p for _, p in section_figures(found, tmp_path / "out")]
    assert path.name == "tune_a.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_too_few_or_equal_values_give_a_line_instead_of_importances() -> None:
    two = [_trial(0, 1e-4, 1, [[64, 1.0]], "complete"), _trial(1, 2e-4, 2, [[64, 2.0]], "complete")]
    assert importances(two, SPACE, 64) == ({}, "too few trials for importances: the value at the first rung (64 agent "
                                               "steps) of 2 trial(s) (at least 3 needed)")  # fmt: skip
    same = [_trial(n, 1e-4 * (n + 1), 1, [[64, 5.0]], "pruned") for n in range(4)]
    assert importances(same, SPACE, 64) == ({}, "no importances: every trial has the same value (5) at the first rung")
