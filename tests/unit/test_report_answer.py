"""The report answers first: effects with CIs and P(improvement), labels by factor, folded constants, baselines,
several sweep directories, and the statistics behind them (probability of improvement, performance profile)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inline import finished
from test_analysis import const, make_2x2, make_run
from tolerance import rounding

from rlsweep.analysis.load import load_sweep
from rlsweep.analysis.report import (
    chosen_metrics,
    config_labels,
    constant_metrics,
    primary_metrics,
    write_report,
)
from rlsweep.analysis.stats import (
    Interval,
    iqm,
    paired_effects,
    performance_profile,
    probability_of_improvement,
    summarize,
)
from rlsweep.cli import commands as cli


def test_probability_of_improvement_hand_values() -> None:
    # U / (n m) in float64: a sum of at most 3 (averaged) ranks up to 5, minus n (n + 1) / 2, divided by n m: ~8
    # roundings of numbers up to 15, i.e. up to 15 / (n m) <= 8 times the probability's own scale. One pair counted
    # wrong moves the probability by 1/6 or more.
    exact = rounding(np.float64, depth=8, scale=8.0)
    assert probability_of_improvement([1.0, 2.0, 3.0], [0.0, 0.0]) == pytest.approx(1.0, abs=exact)
    assert probability_of_improvement([0.0, 0.0], [1.0, 2.0, 3.0]) == pytest.approx(0.0, abs=exact)
    assert probability_of_improvement([5.0, 5.0], [5.0, 5.0]) == pytest.approx(0.5, abs=exact)  # ties count one half
    # pairs (1,2) lose, (3,2) win: one half
    assert probability_of_improvement([1.0, 3.0], [2.0]) == pytest.approx(0.5, abs=exact)
    # 4 pairs of 6 won, one tie: (4 + 0.5) / 6
    assert probability_of_improvement([2.0, 4.0], [1.0, 2.0, 3.0]) == pytest.approx(4.5 / 6, abs=exact)
    batched = probability_of_improvement(np.array([[1.0, 2.0], [5.0, 6.0]]), np.array([[3.0, 4.0], [0.0, 1.0]]))
    np.testing.assert_allclose(batched, [0.0, 1.0], rtol=0, atol=exact)


def test_performance_profile_counts_runs_above_each_threshold() -> None:
    profile = performance_profile([1.0, 2.0, 3.0, 4.0, float("nan")], [0.0, 1.0, 2.5, 4.0])
    # a float64 mean of 4 zeros and ones: 3 additions and a division, exact for quarters; a miscount is off by 0.25
    np.testing.assert_allclose(profile, [1.0, 0.75, 0.5, 0.0], rtol=0, atol=rounding(np.float64, depth=4))


def test_undefined_interval_reads_the_same_everywhere() -> None:
    # A comparison of configurations with one seed each: several runs, but no interval.
    assert Interval(1.0, float("nan"), float("nan"), 4).format() == "n/a (1 seed)"
    assert Interval(1.0, float("nan"), float("nan"), 1).format() == "n/a (1 seed)"
    assert Interval(float("nan"), float("nan"), float("nan"), 0).format() == "no data"


def test_effects_carry_probability_of_improvement_and_follow_the_baseline(tmp_path: Path) -> None:
    make_2x2(tmp_path)  # every B run beats every A run of the same critic_init
    data = load_sweep(tmp_path)
    eff = paired_effects(data, "episode/score", n_resamples=300).set_index("factor")
    # float64: per context U / (n m) (~8 roundings of numbers up to n m = 4 times the probability), then the mean
    # over 2 contexts; the deltas are means of 2 seed means of 2 values, a few roundings of numbers up to 22. A
    # single pair or run counted wrong moves a probability by 1/8 and a delta by 0.5 or more.
    exact, exact_delta = rounding(np.float64, depth=16, scale=4.0), rounding(np.float64, depth=16, scale=32.0)
    assert eff.loc["model", "baseline"] == "A" and eff.loc["model", "level"] == "B"
    assert eff.loc["model", "p_improve"] == pytest.approx(1.0, abs=exact)
    assert eff.loc["model", "n_level"] == 4 and eff.loc["model", "n_base"] == 4
    # critic_init: sqrt2 beats 0.1 in both settings of model
    assert eff.loc["critic_init", "p_improve"] == pytest.approx(1.0, abs=exact)
    flipped = paired_effects(data, "episode/score", n_resamples=300, baselines={"model": "B"}).set_index("factor")
    assert flipped.loc["model", "level"] == "A"
    assert flipped.loc["model", "delta"] == pytest.approx(-eff.loc["model", "delta"], abs=exact_delta)
    assert flipped.loc["model", "p_improve"] == pytest.approx(0.0, abs=exact)
    assert flipped.loc["model", "ci_high"] < 0
    with pytest.raises(ValueError, match="model has the levels A, B"):
        paired_effects(data, "episode/score", baselines={"model": "C"})


def maze_like_sweep(root: Path, seeds: range = range(3), shift: float = 30.0) -> Path:
    """motivation=none,rnd on a maze-like sweep: cells differ, score and sps are flat."""
    for motivation, base in (("none", 100.0), ("rnd", 100.0 + shift)):
        for seed in seeds:
            value = base + 5.0 * seed

            def curve(step: int, v: float = value) -> dict[str, float]:
                return {"explore/cells": v, "episode/score": 0.0, "perf/sps": 500.0}

            make_run(root, f"ppo_{motivation}_a-env_maze", seed, {"motivation": motivation, "env": "maze"}, curve)
    return root


def test_report_opens_with_the_answer_in_words_and_a_figure(tmp_path: Path) -> None:
    sweep = maze_like_sweep(tmp_path / "sweep")
    data = load_sweep(sweep)
    assert primary_metrics(data) == ["explore/cells"]
    assert chosen_metrics(data)[0] == "explore/cells"
    assert constant_metrics(data, ["episode/score", "perf/sps", "explore/cells"]) == {
        "episode/score": 0.0,
        "perf/sps": 500.0,
    }
    assert set(config_labels(data).values()) == {"motivation=none", "motivation=rnd"}

    page = write_report(sweep).read_text()
    md = (sweep / "report" / "summary.md").read_text()
    # The first section is the answer: both arms' values, the effect with its interval and P(improvement), the test
    # with its p-value and level, and the verdict, which 3 vs 3 seeds cannot make at 5 %: the line says so, how many
    # seeds could, and how many would give 80 % power.
    assert md.split("\n## ")[1].startswith("Answer")
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in answer.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none"))
    assert "105 → 135 cells (+29 %)" in line and "Δ +30 [" in line and "(95 % bootstrap CI)" in line
    assert "P(improvement) 1.00" in line and "3 vs 3 seeds" in line
    assert "exact permutation test (20 arrangements), p = 0.1, family-wise α = 0.05 (one comparison)" in line
    assert "the smallest possible p is 0.1): 4 seeds per configuration could" in line
    # SD 5 around each arm's mean, effect 30: any test decides with the fewest seeds that can reach 5 % at all
    assert (
        "80 % power at the effect seen (+30, pooled SD 5) needs 4 seeds per configuration (4 over its 95 % Welch"
        in line
    )
    assert line.endswith(": **not decided**")
    assert "Verdicts: 1 comparison tested by a two-sided permutation test at α = 0.05" in answer
    assert "Few seeds: 3 per configuration" in answer and "the verdicts come from the permutation tests" in answer
    # What the primary metric counts, in words
    assert "- `explore/cells`: distinct maze cells visited by any of the run's envs since the run began" in md
    # Flat metrics fold into one line instead of panels of zeros.
    assert "not shown further: episode/score = 0, perf/sps = 500" in md
    assert "## episode/score" not in md and "episode_score_curves.png" not in page
    # In the page the answer and its figure come before any metric section.
    assert page.index("id='answer'") < page.index("answer.png") < page.index("explore_cells_curves.png")
    assert "<span class='verdict open'>not decided</span>" in page
    assert (sweep / "report" / "answer.png").read_bytes().startswith(b"\x89PNG")
    # Tables and legends label configurations by the factor that varies.
    assert "<td>motivation=rnd</td>" in page and "<td>ppo_rnd_a-env_maze</td>" in page  # the latter: run name column
    effects = pd.read_csv(sweep / "report" / "effects.csv")
    assert list(effects["verdict"]) == ["not decided"] and effects.loc[0, "p"] == 0.1


def test_enough_seeds_decide_and_the_figure_shows_the_verdict(tmp_path: Path) -> None:
    sweep = maze_like_sweep(tmp_path / "sweep", seeds=range(5))
    write_report(sweep)
    md = (sweep / "report" / "summary.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none"))
    # 5 vs 5 seeds, every rnd run above every none run: 2 of C(10, 5) = 252 arrangements are as extreme
    assert f"exact permutation test (252 arrangements), p = {2 / 252:.2g}" in line and line.endswith(": **higher**")
    assert "80 % power" not in line  # a decided comparison needs no plan
    effects = pd.read_csv(sweep / "report" / "effects.csv")
    assert list(effects["verdict"]) == ["higher"]


def test_unresolved_effect_says_so(tmp_path: Path) -> None:
    sweep = maze_like_sweep(tmp_path / "sweep", seeds=range(5), shift=1.0)  # 1 cell apart, seeds spread by 20
    write_report(sweep)
    md = (sweep / "report" / "summary.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none"))
    assert line.endswith(": **not decided**") and "smallest possible p" not in line  # 5 seeds could decide
    assert "no upper bound while its 95 % Welch interval [-10.5, 12.5] contains 0" in line


def test_a_family_of_comparisons_is_held_by_holm(tmp_path: Path) -> None:
    make_2x2(tmp_path)  # model and critic_init, 2 seeds each: two comparisons of episode/score, one family
    write_report(tmp_path)
    md = (tmp_path / "report" / "summary.md").read_text()
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    lines = [x for x in answer.splitlines() if x.startswith("- episode/score: ")]
    assert len(lines) == 2 and all("(Holm over 2 comparisons)" in x for x in lines)
    assert "held at α = 0.05 family-wise by Holm's procedure over all of them" in answer


def test_speed_is_a_cost_without_verdicts(tmp_path: Path) -> None:
    for motivation, sps in (("none", 900.0), ("rnd", 500.0)):
        for seed in range(5):

            def curve(step: int, s: float = sps + seed, c: float = 100.0 + seed) -> dict[str, float]:
                return {"explore/cells": c + step % 7, "perf/sps": s}

            make_run(tmp_path, f"ppo_{motivation}_a-env_maze", seed, {"motivation": motivation, "env": "maze"}, curve)
    write_report(tmp_path)
    md = (tmp_path / "report" / "summary.md").read_text()
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert "perf/sps" not in answer.split("What the metrics count")[0]  # not a comparison of the answer
    section = md.split("## Cost: perf/sps", 1)[1]
    assert section.startswith(" (no verdicts: the speed of the machine the run had, under its load)")
    assert "Effects" not in section.split("\n## ", 1)[0]
    effects = pd.read_csv(tmp_path / "report" / "effects.csv")
    assert "perf/sps" not in set(effects["metric"])


def test_one_configuration_is_compared_with_random_play(tmp_path: Path) -> None:
    for seed in range(6):
        make_run(tmp_path, "atari_check", seed, {"env": "road_runner"}, const(800.0 + seed))
    write_report(tmp_path)
    md = (tmp_path / "report" / "summary.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- episode/score: atari_check"))
    # 6 seeds all above random play's 11.5: 2 of 2^6 sign patterns are as extreme, p = 1/32 <= 0.05
    assert "against random play's score 11.5 (Badia et al. 2020): exact sign-flip test (64 sign patterns)" in line
    assert "p = 0.031, α = 0.05" in line and line.endswith(": **above random play**")
    # ablation.csv and effects.csv keep their columns though no factor varies
    assert (tmp_path / "report" / "ablation.csv").read_text().startswith("metric,factor,level,mean")
    assert (tmp_path / "report" / "effects.csv").read_text().startswith("metric,factor,level,baseline,delta")


def test_report_over_two_sweep_directories_pools_seeds(tmp_path: Path) -> None:
    first = maze_like_sweep(tmp_path / "first", seeds=range(3))
    second = maze_like_sweep(tmp_path / "second", seeds=range(3, 6))
    data = load_sweep([first, second])
    assert data.sweep_dirs == [first, second] and data.seeds == list(range(6))
    assert sorted(data.configs["n_runs"]) == [6, 6]
    out = write_report([first, second], tmp_path / "both")
    md = (out.parent / "summary.md").read_text()
    assert "6 vs 6 seeds" in md and "Few seeds" not in md


def test_cli_baseline_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run_cli(*args: str) -> subprocess.CompletedProcess[str]:  # `rlsweep <args>`, in this process
        return finished(cli.main, args, capsys)

    sweep = maze_like_sweep(tmp_path / "sweep")
    ok = run_cli("report", str(sweep), "--baseline", "motivation=rnd", "--metric", "explore/cells")
    assert ok.returncode == 0, ok.stderr
    md = (sweep / "report" / "summary.md").read_text()
    assert "motivation=none vs motivation=rnd: 135 → 105 cells (-22 %), Δ -30 [" in md
    assert md.count(": **not decided**") == 1
    for bad, message in (
        ("motivation=icm", "--baseline motivation=icm: motivation has the levels none, rnd"),
        ("model=A", "--baseline model=A: model is not a factor of this sweep; factors: motivation"),
        ("motivation", "--baseline motivation: expected factor=level, e.g. motivation=none"),
    ):
        proc = run_cli("report", str(sweep), "--baseline", bad)
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"rlsweep report: error: {message}", proc.stderr


def test_single_seed_comparison_has_no_interval_and_says_so(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    make_run(sweep, "a", 0, {"model": "A"}, const(1.0))
    make_run(sweep, "b", 0, {"model": "B"}, const(2.0))
    write_report(sweep)
    md = (sweep / "report" / "summary.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- episode/score: model=B vs model=A"))
    assert "1 → 2 score (+100 %), Δ +1 (no interval with 1 seed per configuration), P(improvement) 1.00" in line
    # two arrangements of two runs, both as far from 0: p = 1, and no plan without a spread
    assert "1 vs 1 seeds; exact permutation test (2 arrangements), p = 1" in line and "80 % power" not in line
    assert "nan" not in md.lower()


def test_several_games_are_compared_on_normalised_scores(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # RND adds 400 points on Montezuma (random 0, human 4753.3) and 4 on Coinrun (R_min 5, R_max 10): raw, the
    # average effect would be Montezuma's alone; normalised, each game counts on its own scale.
    raw = {("montezuma", "none"): 0.0, ("montezuma", "rnd"): 400.0, ("coinrun", "none"): 5.0, ("coinrun", "rnd"): 9.0}
    for (env, motivation), score in raw.items():
        for seed in range(2):
            make_run(sweep, f"{motivation}-{env}", seed, {"motivation": motivation, "env": env}, const(score + seed))
    make_run(sweep, "none-maze", 0, {"motivation": "none", "env": "maze"}, const(1.0))
    make_run(sweep, "rnd-maze", 0, {"motivation": "rnd", "env": "maze"}, const(2.0))
    write_report(sweep)
    md = (sweep / "report" / "summary.md").read_text()
    answer = md.split("## Answer", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in answer.splitlines() if x.startswith("- episode/score_normalised: motivation=rnd"))
    # Matched settings: Montezuma and Coinrun (the maze has no reference score, so no normalised value).
    expected = (400.0 / 4753.3 + 4.0 / 5.0) / 2
    assert f"Δ {expected:+.3g} [" in line and "over 2 matched settings of env" in line
    assert "env=maze: no reference scores, so its runs are left out of episode/score_normalised" in md
    from rlsweep.analysis.normalise import NORMALISED, REFERENCE_SCORES, add_normalised_score

    data = load_sweep(sweep)
    assert add_normalised_score(data) == ["maze"]
    mz = data.metrics[data.metrics["env"] == "montezuma"]
    low, high = REFERENCE_SCORES["montezuma"]
    # the same float64 formula on both sides: at most 3 roundings each, relative (low is 0: no cancellation)
    exact = rounding(np.float64, depth=6)
    np.testing.assert_allclose(mz[NORMALISED], (mz["episode/score"] - low) / (high - low), rtol=exact)


def make_unmatched(root: Path) -> None:
    """model x critic_init with two cells missing: B only at 0.1, C only at sqrt2; seeds' values are integers, so
    every mean below is exact in float64."""
    cells = {("A", "0.1"): [1.0, 2.0, 3.0], ("A", "sqrt2"): [4.0, 5.0, 6.0], ("B", "0.1"): [10.0, 11.0, 12.0],
             ("C", "sqrt2"): [7.0, 8.0, 9.0]}  # fmt: skip
    for (model, init), values in cells.items():
        for seed, v in enumerate(values):
            make_run(root, f"m{model}_c{init}", seed, {"model": model, "critic_init": init}, const(v))


def test_effects_match_contexts_and_list_the_unmatched(tmp_path: Path) -> None:
    """Each comparison uses only the settings of the other factor where both levels ran; the rest are listed."""
    make_unmatched(tmp_path)
    data = load_sweep(tmp_path)
    eff = paired_effects(data, "episode/score", n_resamples=300).set_index(["factor", "level"])
    # A sum of 3 small integers and its division by 3 are exact; so are their differences, the pooled SD
    # (sqrt(4 / 4) = 1) and U / (n m) = 9 / 9. A wrong context (B at sqrt2 taken from C, say) moves a delta by 3.
    exact = rounding(np.float64, depth=8, scale=16.0)
    b = eff.loc[("model", "B")]
    assert (b["baseline"], b["held_fixed"], b["unmatched"]) == ("A", "critic_init", "critic_init=sqrt2")
    assert b["delta"] == pytest.approx(11.0 - 2.0, abs=exact) and b["ci_low"] <= b["delta"] <= b["ci_high"]
    assert (b["level_mean"], b["base_mean"]) == pytest.approx((11.0, 2.0), abs=exact)
    assert b["sd"] == pytest.approx(1.0, abs=exact) and b["p_improve"] == pytest.approx(1.0, abs=exact)
    assert (b["n_pairs"], b["n_runs"], b["n_level"], b["n_base"]) == (1, 6, 3, 3)
    # 3 vs 3 in one setting: C(6, 3) = 20 label arrangements, 2 as extreme as the observed one (all above, all below)
    assert b["arrangements"] == 20 and b["test"].startswith("exact") and b["p"] == pytest.approx(0.1, abs=exact)
    c = eff.loc[("model", "C")]
    assert c["unmatched"] == "critic_init=0.1" and c["delta"] == pytest.approx(8.0 - 5.0, abs=exact)
    init = eff.loc[("critic_init", "sqrt2")]
    assert init["unmatched"] == "model=B; model=C" and init["delta"] == pytest.approx(5.0 - 2.0, abs=exact)
    # against B, C never ran in the same setting: no effect, no test, both settings listed
    vs_b = paired_effects(data, "episode/score", n_resamples=300, baselines={"model": "B"}).set_index("level")
    none = vs_b.loc["C"]
    assert (none["n_pairs"], none["n_runs"], none["arrangements"], none["test"]) == (0, 0, 0, "")
    assert none["unmatched"] == "critic_init=0.1; critic_init=sqrt2"
    assert all(math.isnan(none[k]) for k in ("delta", "ci_low", "p", "p_improve", "level_mean", "sd", "welch_low"))
    assert vs_b.loc["A", "delta"] == pytest.approx(2.0 - 11.0, abs=exact)


def test_added_statistics_are_bootstrapped_like_the_built_in_ones(tmp_path: Path) -> None:
    """A statistic added to summarize (aggregates) or paired_effects (two_sample) gets its value and interval from
    the same seeds and the same bootstrap as the columns those functions compute themselves."""
    make_unmatched(tmp_path)
    data = load_sweep(tmp_path)
    again = paired_effects(data, "episode/score", n_resamples=300, two_sample={"again": probability_of_improvement})
    # the same function of the same resamples in the same order: bit for bit
    for own, added in (("p_improve", "again"), ("p_ci_low", "again_ci_low"), ("p_ci_high", "again_ci_high")):
        assert again[own].tolist() == again[added].tolist()
    added = {"iqm2": lambda a: np.asarray(iqm(a, axis=-1)), "median": lambda a: np.median(a, axis=-1)}
    summary = summarize(data, "episode/score", n_resamples=300, aggregates=added)
    for own in ("iqm", "iqm_ci_low", "iqm_ci_high"):
        assert summary[own].tolist() == summary[own.replace("iqm", "iqm2")].tolist()
    # the median of 3 integers is one of them, exactly
    assert summary.set_index("name").loc["mB_c0.1", "median"] == 11.0
    assert list(summary.columns[-6:]) == [f"{k}{c}" for k in added for c in ("", "_ci_low", "_ci_high")]
