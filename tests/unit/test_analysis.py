"""Unit tests for rlsweep.analysis: statistics against hand values, loading, flags, and the written report."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tolerance import rounding

from rlsweep.analysis.load import load_sweep, read_metrics_file
from rlsweep.analysis.report import write_report
from rlsweep.analysis.stats import (
    ablation_table,
    bootstrap_ci,
    final_per_run,
    final_performance,
    iqm,
    learning_curves,
    stratified_bootstrap_ci,
    summarize,
)

STEP = 1024
TOTAL = 100 * STEP
# The statistics checked here are float64 means of at most 101 numbers (a run's 100 lines, a final window of 11, a
# few seeds), nested at most twice: a mean rounds once per addition and once for its division, so 2 x 101 roundings
# bound each, relative to the values (all of one sign; a difference of two means here is at least half of either).
# A real mistake (a wrong window, a seed left in or out, a wrong cut) is off by 1e-3 relative or more.
MEANS = rounding(np.float64, depth=2 * 101)


def make_run(
    sweep: Path,
    name: str,
    seed: int,
    choices: dict[str, str],
    curve: Callable[[int], dict[str, float]],
    *,
    status: str = "completed",
    n_lines: int = 100,
    total_steps: int = TOTAL,
    tail: str | None = None,
    overrides: list[str] | None = None,
    run_id: str | None = None,
) -> Path:
    """Write run.json + metrics.jsonl for one synthetic run; ``curve(step)`` gives the metric values."""
    run_id = run_id or f"{name}-s{seed}"
    run_dir = sweep / run_id
    run_dir.mkdir(parents=True)
    lines = []
    for i in range(1, n_lines + 1):
        step = i * STEP
        lines.append(json.dumps({"global_step": step, "iteration": i, **curve(step)}))
    text = "\n".join(lines) + "\n"
    if tail is not None:
        text += tail
    (run_dir / "metrics.jsonl").write_text(text)
    meta: dict[str, Any] = {
        "name": name,
        "run_id": run_id,
        "seed": seed,
        "sweep": "unit",
        "choices": choices,
        "overrides": overrides or [],
        "status": status,
        "total_steps": total_steps,
        "global_step": n_lines * STEP,
        "wandb_id": None,
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def const(value: float, metric: str = "episode/score") -> Callable[[int], dict[str, float]]:
    return lambda step: {metric: value}


def test_a_swept_value_override_on_one_preset_makes_a_configuration_per_value(tmp_path: Path) -> None:
    """``-m experiment=atari_check perf.autocast=none,bf16``: one preset name, two configurations, each with its
    own seeds; an override every run shares (``budget.total_steps``) names nothing."""
    sweep = tmp_path / "sw"
    for value, score in (("none", 500.0), ("bf16", 300.0)):
        for seed in (1, 2):
            overrides = ["experiment=atari_check", f"seed={seed}", f"perf.autocast={value}", "budget.total_steps=9"]
            make_run(
                sweep,
                "atari_check",
                seed,
                {"experiment": "atari_check"},
                const(score + seed),
                overrides=overrides,
                run_id=f"atari_check-budget.total_steps=9-perf.autocast={value}-s{seed}",
            )
    data = load_sweep(sweep)
    assert data.factors == ["perf.autocast"]
    assert sorted(data.configs["name"]) == ["atari_check-perf.autocast=bf16", "atari_check-perf.autocast=none"]
    assert list(data.configs["seeds"]) == [[1, 2], [1, 2]]
    assert not [i for i in data.issues if "has 2 runs" in i], data.issues
    final = summarize(data, "episode/score").set_index("name")["mean"]
    assert final["atari_check-perf.autocast=none"] == pytest.approx(501.5, rel=MEANS)
    assert final["atari_check-perf.autocast=bf16"] == pytest.approx(301.5, rel=MEANS)


# --------------------------------------------------------------------------------------------- statistics


def test_iqm_hand_values() -> None:
    # n=8: cut int(0.25*8)=2 from each end -> mean(3, 4, 5, 6)
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5, rel=MEANS)
    # outliers at both ends are cut away entirely
    assert iqm([-1000, 2, 3, 4, 5, 6, 7, 1000]) == pytest.approx(4.5, rel=MEANS)
    # n=5: cut int(1.25)=1 -> mean(2, 3, 4); an outlier does not move it
    assert iqm([100, 1, 2, 3, 4]) == pytest.approx(3.0, rel=MEANS)
    # n=3: int(0.75)=0, nothing cut -> plain mean (scipy.stats.trim_mean convention)
    assert iqm([1, 2, 10]) == pytest.approx(13 / 3, rel=MEANS)
    # n=10: cut 2 -> mean(3..8) = 5.5
    assert iqm(np.arange(1, 11)) == pytest.approx(5.5, rel=MEANS)
    # vectorised along the last axis
    rows = np.array([np.arange(1, 9), np.arange(1, 9) * 2.0])
    np.testing.assert_allclose(iqm(rows, axis=-1), [4.5, 9.0], rtol=MEANS)
    with pytest.raises(ValueError):
        iqm([])


def test_bootstrap_ci_contains_true_mean_and_is_reproducible() -> None:
    sample = np.random.default_rng(1).normal(5.0, 1.0, size=50)
    ci = bootstrap_ci(sample, "mean", seed=7)
    assert ci.low < 5.0 < ci.high
    assert ci.low < ci.point < ci.high
    assert ci.point == pytest.approx(sample.mean(), rel=MEANS)
    again = bootstrap_ci(sample, "mean", seed=7)
    assert (again.low, again.high) == (ci.low, ci.high)
    other = bootstrap_ci(sample, "mean", seed=8)
    assert (other.low, other.high) != (ci.low, ci.high)
    iqm_ci = bootstrap_ci(sample, "iqm", seed=7)
    assert iqm_ci.low < 5.0 < iqm_ci.high


def test_bootstrap_coverage_on_normal_samples() -> None:
    rng = np.random.default_rng(123)
    hits = 0
    reps = 200
    for i in range(reps):
        sample = rng.normal(0.0, 1.0, size=20)
        ci = bootstrap_ci(sample, "mean", n_resamples=1000, seed=i)
        hits += ci.low <= 0.0 <= ci.high
    coverage = hits / reps
    assert 0.88 <= coverage <= 0.99, coverage


def test_single_seed_ci_is_degenerate_not_fake() -> None:
    ci = bootstrap_ci([3.0], "mean")
    assert ci.degenerate and ci.point == 3.0
    assert math.isnan(ci.low) and math.isnan(ci.high)
    assert ci.format() == "n/a (1 seed)"
    empty = bootstrap_ci([float("nan")], "mean")
    assert empty.n == 0 and empty.format() == "no data"


def test_stratified_bootstrap_keeps_strata_sizes() -> None:
    # Two strata with no within-stratum spread: the mean of stratum means cannot vary.
    ci = stratified_bootstrap_ci([[1.0, 1.0, 1.0], [5.0, 5.0]], lambda s: np.mean([x.mean(axis=-1) for x in s], axis=0))
    assert ci.point == pytest.approx(3.0, rel=MEANS)
    assert ci.low == pytest.approx(3.0, rel=MEANS) and ci.high == pytest.approx(3.0, rel=MEANS)


def test_final_performance_known_curve() -> None:
    steps = np.arange(1, 101) * 1000
    values = steps / 1000.0
    # last 10 % of steps: steps >= 90 000 -> values 90..100 -> mean 95
    assert final_performance(steps, values) == pytest.approx(95.0, rel=MEANS)
    # sparse metric with nothing in the window falls back to the latest value
    assert final_performance([1000, 2000], [3.0, 4.0], last_step=100_000) == pytest.approx(4.0, rel=MEANS)
    assert math.isnan(final_performance([1000], [float("nan")]))


# ------------------------------------------------------------------------------------------------ loading


def test_final_per_run_from_disk(tmp_path: Path) -> None:
    make_run(tmp_path, "cfg", 0, {"model": "A"}, lambda s: {"episode/score": s / STEP})
    per_run = final_per_run(load_sweep(tmp_path), "episode/score")
    # steps 1..100 x STEP, window >= 90 x STEP -> values 90..100 -> 95
    assert per_run["final"].iloc[0] == pytest.approx(95.0, rel=MEANS)


def test_truncated_final_line_is_skipped(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "cfg", 0, {"model": "A"}, const(1.0), n_lines=10, tail='{"global_step": 11264, "episo')
    records, notes = read_metrics_file(run_dir / "metrics.jsonl")
    assert len(records) == 10
    assert any("truncated final line" in n for n in notes)
    data = load_sweep(tmp_path)
    assert len(data.metrics) == 10
    assert int(data.runs["n_logged"].iloc[0]) == 10
    assert any("truncated" in i for i in data.issues)


def test_loader_tables_and_ignored_dirs(tmp_path: Path) -> None:
    make_run(tmp_path, "cfg", 0, {"model": "A", "motivation": "rnd"}, const(2.0))
    make_run(tmp_path, "cfg", 1, {"model": "A", "motivation": "rnd"}, const(4.0), status="running", n_lines=50)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "report").mkdir()
    data = load_sweep(tmp_path)
    assert list(data.runs["run_id"]) == ["cfg-s0", "cfg-s1"]
    assert data.choice_columns == ["model", "motivation"]
    assert data.factors == []
    running = data.runs.set_index("run_id").loc["cfg-s1"]
    assert bool(running["unfinished"]) and running["progress"] == pytest.approx(0.5, rel=MEANS)
    assert "running at 50 %" in running["flags"]
    for col in ["run_id", "name", "seed", "status", "model", "motivation", "global_step", "episode/score"]:
        assert col in data.metrics.columns
    assert len(data.metrics) == 150


def test_loader_steps_keep_the_tables_and_every_problem_in_order(tmp_path: Path) -> None:
    """load_sweep's steps, each checked where it shows: issues in reading order (a damaged record, a re-logged step,
    a missing metrics file, a seed from nowhere), then the identities' and the configurations' issues; choice columns
    in first-seen order with a clashing key renamed, a shared override dropped and a varied one naming the
    configuration; the runs and metrics tables' columns and order."""
    sweep = tmp_path / "sw"
    shared = ["budget.total_steps=9"]
    make_run(sweep, "cfg", 0, {"model": "A"}, lambda s: {"episode/score": 1.0, "status": 5.0},
             overrides=[*shared, "ppo.lr=1"])  # fmt: skip
    relogged = make_run(sweep, "cfg", 1, {"model": "A", "status": "x"}, const(2.0), overrides=[*shared, "ppo.lr=2"])
    lines = (relogged / "metrics.jsonl").read_text().splitlines()
    (relogged / "metrics.jsonl").write_text("\n".join([*lines, lines[-1].replace("2.0", "3.0")]) + "\n")
    (make_run(sweep, "cfg", 2, {"model": "B"}, const(4.0), overrides=shared) / "metrics.jsonl").unlink()
    (make_run(sweep, "broken", 0, {"model": "A"}, const(1.0)) / "run.json").write_text("{")
    odd = make_run(sweep, "odd", 0, {"model": "B"}, const(6.0), run_id="odd", overrides=shared)
    meta = json.loads((odd / "run.json").read_text())
    (odd / "run.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("seed", "name")}))
    make_run(sweep, "odd", -1, {"model": "B"}, const(7.0), run_id="odd-again", overrides=shared)

    data = load_sweep(sweep)
    issues = data.issues
    assert issues[0].startswith(f"{sweep / 'broken-s0' / 'run.json'} is damaged (") and "run not included" in issues[0]
    assert issues[1:] == [
        f"{sweep / 'cfg-s1' / 'metrics.jsonl'}: global_step not strictly increasing; kept the last line for repeated "
        "steps",
        f"{sweep / 'cfg-s2'}: no metrics.jsonl",
        f"{sweep / 'odd'}: run.json has no seed and run_id has no -s<seed>; using seed -1",
        f"configuration odd seed -1 has 2 runs: {sweep / 'odd'}, {sweep / 'odd-again'}",
    ]
    # budget.total_steps is shared: not a column; ppo.lr varies: a column and part of the name (where it is set)
    assert data.choice_columns == ["model", "ppo.lr", "choice.status"]
    runs = data.runs.set_index("run_id")
    assert runs["name"].to_dict() == {"cfg-s0": "cfg-ppo.lr=1", "cfg-s1": "cfg-ppo.lr=2", "cfg-s2": "cfg",
                                      "odd": "odd", "odd-again": "odd"}  # fmt: skip
    assert list(runs["choice.status"]) == ["(unset)", "(unset)", "x", "(unset)", "(unset)"]
    assert runs.loc["cfg-s1", "n_logged"] == 100 and runs.loc["cfg-s2", "n_logged"] == 0
    # the runs table: identity, the first run's choices, progress and bookkeeping, choices first seen later, flags
    assert list(data.runs.columns) == [
        "run_id", "name", "seed", "status", "sweep", "model", "ppo.lr", "total_steps", "global_step", "progress",
        "n_logged", "last_logged_step", "wandb_id", "wandb_project", "wandb_entity", "git_commit", "git_dirty",
        "run_dir", "choice.status", "unfinished", "flags", "config_missing_seeds",
    ]  # fmt: skip
    assert list(data.runs["run_id"]) == ["cfg-s2", "cfg-s0", "cfg-s1", "odd", "odd-again"]  # by name, seed, run id
    # a logged key named like a loader column ("status") is not a metric
    assert data.metric_names == ["episode/score"]
    assert list(data.metrics.columns) == ["run_id", "name", "seed", "status", "model", "ppo.lr", "choice.status",
                                          "global_step", "iteration", "episode/score"]  # fmt: skip
    relogged_scores = data.metrics.loc[data.metrics["run_id"] == "cfg-s1", "episode/score"]
    assert relogged_scores.iloc[-1] == 3.0 and len(relogged_scores) == 100  # the later line of a repeated step wins
    assert list(data.configs["name"]) == ["cfg", "cfg-ppo.lr=1", "cfg-ppo.lr=2", "odd"]
    assert data.seeds == [-1, 0, 1, 2]


def test_learning_curves_do_not_extrapolate_unfinished_runs(tmp_path: Path) -> None:
    make_run(tmp_path, "cfg", 0, {"model": "A"}, lambda s: {"episode/score": s / STEP})
    make_run(
        tmp_path,
        "cfg",
        1,
        {"model": "A"},
        lambda s: {"episode/score": s / STEP + 2},
        status="running",
        n_lines=50,
    )
    curve = learning_curves(load_sweep(tmp_path), "episode/score", n_points=100, n_resamples=200)["cfg"]
    early = curve.steps <= 50 * STEP
    late = curve.steps > 50 * STEP
    np.testing.assert_allclose(curve.mean[early], curve.steps[early] / STEP + 1, rtol=MEANS)
    np.testing.assert_allclose(curve.mean[late], curve.steps[late] / STEP, rtol=MEANS)
    assert (curve.count[early] == 2).all() and (curve.count[late] == 1).all()
    assert np.isfinite(curve.low[early]).all() and np.isnan(curve.low[late]).all()


# ------------------------------------------------------------------------------------- flags and ablation


def make_flagged_sweep(root: Path) -> Path:
    """cfg_a: seeds 0-2 completed; cfg_b: seed 0 completed, seed 1 running, seed 2 missing."""
    for seed, value in enumerate([1.0, 2.0, 3.0]):
        make_run(root, "cfg_a", seed, {"model": "A"}, const(value))
    make_run(root, "cfg_b", 0, {"model": "B"}, const(10.0))
    make_run(root, "cfg_b", 1, {"model": "B"}, const(0.0), status="running", n_lines=30)
    return root


def test_unfinished_and_missing_seed_are_flagged(tmp_path: Path) -> None:
    sweep = make_flagged_sweep(tmp_path / "sweep")
    data = load_sweep(sweep)
    cfg_b = data.configs.set_index("name").loc["cfg_b"]
    assert cfg_b["missing_seeds"] == [2]
    summary = summarize(data, "episode/score", n_resamples=200).set_index("name")
    # the running seed is excluded from the statistics, so cfg_b's mean is its completed seed only
    assert summary.loc["cfg_b", "mean"] == pytest.approx(10.0, rel=MEANS)
    assert summary.loc["cfg_b", "ci_degenerate"]
    assert summary.loc["cfg_a", "mean"] == pytest.approx(2.0, rel=MEANS)

    write_report(sweep, metrics=["episode/score"])
    md = (sweep / "report" / "summary.md").read_text()
    # Configurations are labelled by the factor that varies, not by their run names.
    row_b = next(line for line in md.splitlines() if line.startswith("| model=B |"))
    assert "1/3" in row_b  # seeds completed/total
    assert "seed 1 running (30 %, excluded)" in row_b
    assert "missing seed(s) 2" in row_b
    assert "n/a (1 seed)" in row_b
    row_a = next(line for line in md.splitlines() if line.startswith("| model=A |"))
    assert "3/3" in row_a
    assert "run cfg_b-s1: running at 30 % of budget" in md


def test_config_without_completed_runs_is_provisional(tmp_path: Path) -> None:
    make_run(tmp_path, "cfg", 0, {"model": "A"}, const(1.0), status="failed", n_lines=20)
    summary = summarize(load_sweep(tmp_path), "episode/score", n_resamples=100)
    assert bool(summary["provisional"].iloc[0])
    assert summary["mean"].iloc[0] == pytest.approx(1.0, rel=MEANS)
    assert "provisional" in summary["notes"].iloc[0]


def make_2x2(root: Path, drop: tuple[str, int] | None = None) -> dict[str, list[float]]:
    """model x critic_init, two seeds per cell, constant curves with known values."""
    cells = {
        ("A", "0.1"): [1.0, 3.0],
        ("A", "sqrt2"): [4.0, 6.0],
        ("B", "0.1"): [10.0, 12.0],
        ("B", "sqrt2"): [20.0, 22.0],
    }
    values = {}
    for (model, init), vals in cells.items():
        name = f"m{model}_c{init}"
        for seed, v in enumerate(vals):
            if drop == (name, seed):
                continue
            make_run(root, name, seed, {"model": model, "critic_init": init, "env": "maze"}, const(v))
            values.setdefault(name, []).append(v)
    return values


def test_ablation_effect_matches_hand_computed_2x2(tmp_path: Path) -> None:
    make_2x2(tmp_path)
    data = load_sweep(tmp_path)
    assert data.factors == ["model", "critic_init"]  # env has one value: not a factor
    table = ablation_table(data, "episode/score", n_resamples=500).set_index(["factor", "level"])
    # cell means: A/0.1=2, A/sqrt2=5, B/0.1=11, B/sqrt2=21
    assert table.loc[("model", "A"), "mean"] == pytest.approx((2 + 5) / 2, rel=MEANS)
    assert table.loc[("model", "B"), "mean"] == pytest.approx((11 + 21) / 2, rel=MEANS)
    assert table.loc[("model", "B"), "delta"] == pytest.approx(16 - 3.5, rel=MEANS)
    assert table.loc[("critic_init", "sqrt2"), "delta"] == pytest.approx((5 + 21) / 2 - (2 + 11) / 2, rel=MEANS)
    assert table.loc[("model", "A"), "n_runs"] == 4 and table.loc[("model", "A"), "n_configs"] == 2
    lo, hi = table.loc[("model", "B"), ["ci_low", "ci_high"]]
    assert lo <= 16 <= hi


def test_ablation_unbalanced_seeds_weigh_configs_equally(tmp_path: Path) -> None:
    make_2x2(tmp_path, drop=("mB_csqrt2", 1))  # B/sqrt2 keeps only the value 20
    table = ablation_table(load_sweep(tmp_path), "episode/score", n_resamples=200).set_index(["factor", "level"])
    assert table.loc[("model", "B"), "mean"] == pytest.approx((11 + 20) / 2, rel=MEANS)
    assert table.loc[("model", "B"), "n_runs"] == 3


# ------------------------------------------------------------------------------------------------- report

PNG_MAGIC = b"\x89PNG"


def test_write_report_outputs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    rng = np.random.default_rng(0)
    for model, slope in [("A", 1.0), ("B", 2.0)]:
        for init in ["0.1", "sqrt2"]:
            for seed in range(3):
                noise = rng.normal(0, 3, size=200)
                make_run(
                    sweep,
                    f"m{model}_c{init}",
                    seed,
                    {"model": model, "critic_init": init},
                    lambda s, sl=slope, nz=noise: {  # type: ignore[misc]
                        "episode/score": sl * s / STEP + nz[s // STEP],
                        "explore/rooms": float(s // (10 * STEP)),
                        "perf/sps": 1000.0 + nz[s // STEP],
                    },
                )
    out = write_report(sweep)
    assert out == sweep / "report" / "report.html"
    page = out.read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # the answer, then 2 metrics x (curves, final, effects held fixed, averaged over the other factor), perf/sps (a
    # cost: no effects tested, so no effects figure), plus a performance profile for each of the 2 primary metrics
    # (rooms and score: the runs count rooms)
    assert len(uris) == 1 + 2 * 4 + 3 + 2
    for payload in uris:
        assert base64.b64decode(payload).startswith(PNG_MAGIC)
    pngs = sorted((sweep / "report").glob("*.png"))
    assert len(pngs) == len(uris)  # every figure in the page is a file beside it too
    assert page.index("answer.png") < page.index("explore_rooms_curves.png")
    for png in pngs:
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert png.stat().st_size > 5_000, png
    csv = pd.read_csv(sweep / "report" / "summary.csv")
    assert set(csv["metric"]) == {"episode/score", "explore/rooms", "perf/sps"}
    assert len(csv) == 12
    for name in ["mA_c0.1-s0", "mB_csqrt2-s2"]:
        assert name in page


def test_write_report_custom_out_dir_and_missing_metric(tmp_path: Path) -> None:
    sweep = make_flagged_sweep(tmp_path / "sweep")
    out = write_report(sweep, tmp_path / "elsewhere", metrics=["episode/score", "explore/cells"])
    assert out == tmp_path / "elsewhere" / "report.html"
    page = out.read_text()
    assert "explore/cells requested but not logged" in page
    assert "missing seed(s) 2" in page
    assert (tmp_path / "elsewhere" / "summary.md").is_file()


def test_empty_sweep_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no runs"):
        load_sweep(tmp_path)
