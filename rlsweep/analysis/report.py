"""The sweep report: ``report.html`` (self-contained), ``summary.md``, CSV tables and the PNGs.

:func:`write_report` is what ``rlsweep report <sweep_dir>...`` calls. The report answers the ablation question
first: what each factor did to the primary metric(s), as an effect with its 95 % CI and the probability of
improvement, in words and one figure. What could mislead comes next (unfinished or failed runs, missing
seeds, few seeds, read problems), then one section per metric, the method, and the runs. Configurations are
labelled by the factors that vary (``motivation=rnd``), never by their long run names, and an undefined
value reads the same in every table. The HTML embeds every figure as a base64 ``data:`` URI so the single file
can be mailed; the PNG files are kept next to it for slides.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlsweep.analysis.load import COMPLETED, SweepData, load_sweep
from rlsweep.analysis.normalise import ATARI_GAMES, NORMALISED, REFERENCE_SCORES, SCORE, add_normalised_score
from rlsweep.analysis.plots import (
    config_colors,
    plot_ablation,
    plot_answer,
    plot_final_performance,
    plot_learning_curves,
    plot_paired_effects,
    plot_performance_profile,
    slug,
)
from rlsweep.analysis.sequential import ADASTOP_013, CONTINUE, RecordedTest, load_tests
from rlsweep.analysis.stats import (
    ABLATION_COLUMNS,
    BOOTSTRAP_SEED,
    EFFECT_COLUMNS,
    FINAL_FRACTION,
    N_RESAMPLES,
    Interval,
    ablation_table,
    final_per_run,
    learning_curves,
    paired_effects,
    summarize,
)
from rlsweep.analysis.verdicts import (
    ALPHA,
    EXACT_LIMIT,
    HIGHER,
    LOWER,
    OPEN,
    PERMUTATIONS,
    PermutationTest,
    decide,
    seed_plan,
    sign_flip_test,
)

# Reported after the primary metrics when some run logged them.
DEFAULT_METRICS = (
    "episode/score",
    "episode/return",
    "explore/rooms",
    "explore/cells",
    "motivation/int_reward_mean",
    "perf/sps",
)
# Below this many seeds per configuration the report says that its intervals are descriptive: a percentile
# bootstrap over n seeds can only reach the n observed values, so at 3 seeds the 95 % CI is nearly the min-max
# range and covers less than 95 % (Agarwal et al. 2021 show the same for IQM at few runs).
FEW_SEEDS = 5

METHODS = """\
Final performance of a run = mean of the metric over the last {pct:.0f} % of its logged
agent steps (lines with global_step >= {keep:g} x the run's last logged step; for sparse
episode metrics with no value in that window, the run's latest value). Per configuration: mean and
interquartile mean (IQM: mean of the middle 50 %, scipy.stats.trim_mean(x, 0.25), the rliable
convention; equals the mean for fewer than 4 seeds) over seeds, with 95 % percentile bootstrap CIs
(scipy.stats.bootstrap, {n_resamples} resamples over seeds, numpy Generator seed {seed}). With 1 seed no CI
is given. Statistics use completed runs only; a configuration with no completed run uses its unfinished runs
and is marked provisional. Effects (the answer): for each level of a factor against its baseline, the
difference of configuration means within every combination of the other factors where both were run,
averaged over those matched settings; unmatched combinations are listed, not used. The CI resamples seeds
within each configuration (stratified bootstrap: scipy.stats.bootstrap over one sample per configuration).
P(improvement) = probability that a run at the level ends above a run at the baseline in the same setting
(Mann-Whitney U / (n m), ties count one half, as in rliable), averaged over settings, with the same
bootstrap. The intervals describe; the verdicts come from tests. Each comparison of the answer is a two-sided
permutation test of the effect: within each matched setting the runs' labels (level or baseline) are
permuted, and p is the share of label arrangements whose effect is at least as far from 0 as the observed
one (every arrangement while there are at most {exact:,}, else {perms:,} random ones, p = (1 + k) / (1 + B)).
Its error rate holds at any seed count and for any distribution of the metric; with n vs n seeds p cannot go
below 2 / C(2n, n) (0.1 at 3 vs 3), and the answer says so where that keeps a comparison open. The
comparisons of the answer (each level against its baseline, for each primary metric) are one family, held at
family-wise alpha {alpha:g} by Holm's step-down procedure; a comparison that rlsweep seeds' sequential test
covers takes that test's decision instead (two-sided AdaStop, its own family over every comparison and look).
A configuration alone, on an Atari game, is tested against random play's score by an exact sign-flip test.
Planned seeds: the fewest per configuration that give 80 % power at the observed effect and pooled seed SD
(two-sample t-test, noncentral t) at the family's first Holm level. Metrics perf/* are costs: described,
never tested. benchmarks/calibration.py measures these error rates and powers by simulation.
Performance profile: fraction of runs whose final value exceeds each threshold. Learning curves:
every run linearly interpolated onto a common regular grid of 200 steps within its own logged range (no
extrapolation), mean over seeds, 95 % bootstrap band across seeds where at least 2 seeds cover the step.
Averaged over the other factors (2 or more factors): for each level, the mean over configurations at that
level of each configuration's mean (each configuration weighs the same), comparable only when the design is
balanced."""

# What the report's metrics count: over the whole run, or per episode. A run's final performance is the mean of a
# metric over its last 10 % of steps (Method), so a cumulative count's final value is the run's count near its end.
GLOSSARY = {
    "explore/cells": "distinct maze cells visited by any of the run's envs since the run began (cumulative over the "
    "run; the maze has no extrinsic reward, so this is its outcome)",
    "explore/rooms": "distinct rooms (level, room) entered by any of the run's envs since the run began (cumulative "
    "over the run; Montezuma's Revenge has 24 rooms on its first level)",
    "episode/rooms": "distinct rooms entered in one episode, averaged over the episodes that ended in a log interval",
    "episode/score": "the game's own score of one episode (unclipped), averaged over the episodes that ended in a "
    "log interval",
    "episode/return": "the extrinsic reward the agent was trained on (clipped) summed over one episode, averaged "
    "like the score",
    NORMALISED: "the score per game on one scale: 0 = a random policy's (Procgen: R_min), 1 = a human tester's "
    "(Procgen: R_max)",
    "motivation/int_reward_mean": "the intrinsic reward per step of the last rollout, after its normalisation",
    "perf/sps": "agent steps per second of wall-clock time: a cost, which depends on the machine and its load",
}
COST_PREFIX = "perf/"

NO_VALUE = "–"  # a number that does not exist (no run logged it); intervals use Interval.format's wording


def methods_text(n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> str:
    """The report's "Method" paragraph for the settings actually used."""
    return METHODS.format(pct=100 * FINAL_FRACTION, keep=1 - FINAL_FRACTION, n_resamples=n_resamples, seed=seed,
                          exact=EXACT_LIMIT, perms=PERMUTATIONS, alpha=ALPHA)  # fmt: skip


# ------------------------------------------------------------------------------------------ what to report


def logged_metrics(data: SweepData) -> set[str]:
    """Metrics some run logged at least once."""
    return {m for m in data.metric_names if data.metrics[m].notna().any()}


def primary_metrics(data: SweepData) -> list[str]:
    """The metrics the answer is about, by env family, read off what the runs logged.

    The maze logs ``explore/cells`` (no extrinsic reward: cells visited is the outcome); Montezuma and other
    games with room counting log ``explore/rooms``, and rooms come first, then the game score; Procgen and
    other Atari games: the game score. Over several games the score is the normalised one
    (:mod:`rlsweep.analysis.normalise`), when :func:`write_report` added it.
    """
    logged = logged_metrics(data)
    if "explore/cells" in logged:
        return ["explore/cells"]
    # Several games: the per-game normalised score (added by write_report) stands for the score.
    score = NORMALISED if NORMALISED in logged else "episode/score"
    return [m for m in ("explore/rooms", score) if m in logged]


def chosen_metrics(data: SweepData, metrics: Sequence[str] | None = None) -> list[str]:
    """Every metric the report covers, in its order: the primary ones (``metrics`` when given, else
    :func:`primary_metrics`), then those of :data:`DEFAULT_METRICS` that some run logged."""
    logged = logged_metrics(data)
    primary = [m for m in metrics if m in logged] if metrics else primary_metrics(data)
    return list(dict.fromkeys([*primary, *(m for m in DEFAULT_METRICS if m in logged)]))


def constant_metrics(data: SweepData, metrics: Sequence[str]) -> dict[str, float]:
    """Metrics with one value in every logged line of every run (a flat zero score on the maze, say)."""
    out = {}
    for m in metrics:
        values = data.metrics[m].dropna().unique() if m in data.metrics else []
        if len(values) == 1:
            out[m] = float(values[0])
    return out


def config_labels(data: SweepData) -> dict[str, str]:
    """``factor=level, ...`` per configuration, over the factors that vary; the run name when none varies."""
    labels = {}
    for row in data.configs.to_dict("records"):
        parts = [f"{f}={row[f]}" for f in data.factors]
        labels[str(row["name"])] = ", ".join(parts) if parts else str(row["name"])
    return labels


def parse_baselines(data: SweepData, items: Sequence[str]) -> dict[str, str]:
    """``factor=level`` strings into a mapping, checked against the sweep's factors and their levels.

    Raises:
        ValueError: one line naming the item and what is allowed.
    """
    out: dict[str, str] = {}
    for item in items:
        factor, sep, level = item.partition("=")
        if not sep or not factor or not level:
            raise ValueError(f"--baseline {item}: expected factor=level, e.g. motivation=none")
        if factor not in data.factors:
            allowed = ", ".join(data.factors) or "none (no factor varies in this sweep)"
            raise ValueError(f"--baseline {item}: {factor} is not a factor of this sweep; factors: {allowed}")
        levels = sorted({str(v) for v in data.runs[factor]})
        if level not in levels:
            raise ValueError(f"--baseline {item}: {factor} has the levels {', '.join(levels)}")
        out[factor] = level
    return out


# ---------------------------------------------------------------------------------------------- the answer


@dataclass
class _MetricResult:
    metric: str
    primary: bool
    summary: pd.DataFrame
    ablation: pd.DataFrame  # averaged over the other factors (only with 2+ factors)
    effects: pd.DataFrame  # matched pairs, other factors held fixed
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png path)
    # no factor varies: configuration -> (what the reference is, its value, the test against it)
    reference: dict[str, tuple[str, float, PermutationTest]] = field(default_factory=dict)
    cost: bool = False  # perf/*: the machine's speed, described without verdicts


def _num(x: object, signed: bool = False) -> str:
    """Compact number for tables and sentences; a missing number as :data:`NO_VALUE`."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NO_VALUE
    if isinstance(x, float | np.floating):
        return f"{x:+.3g}" if signed else f"{x:.4g}"
    return str(x)


def _ci_text(low: float, high: float, n: int) -> str:
    return Interval(float("nan"), low, high, n).format("{:.3g}")


def _prob(p: object) -> str:
    """A probability with two decimals (0.50, 1.00), so that 1 reads as a probability, not a count."""
    return NO_VALUE if not isinstance(p, float | np.floating) or math.isnan(p) else f"{p:.2f}"


def _prob_ci(low: float, high: float, n: int) -> str:
    return Interval(float("nan"), low, high, n).format("{:.2f}")


def short_metric(metric: str) -> str:
    """``explore/cells`` -> ``cells``: the unit word of a sentence."""
    return metric.rsplit("/", 1)[-1]


def _change(row: Mapping[str, Any]) -> str:
    """``142 → 200 cells (+41 %)``: both sides' values, then the relative change where the baseline is not 0."""
    base, level = float(row["base_mean"]), float(row["level_mean"])
    text = f"{_num(base)} → {_num(level)} {short_metric(str(row['metric']))}"
    if math.isfinite(base) and math.isfinite(level) and base != 0:
        text += f" ({100 * (level - base) / abs(base):+.0f} %)"
    return text


def _seeds_text(row: Mapping[str, Any]) -> str:
    if int(row["n_pairs"]) > 1:
        return f"{row['n_level']} vs {row['n_base']} runs over {row['n_pairs']} matched settings of {row['held_fixed']}"
    return f"{row['n_level']} vs {row['n_base']} seeds"


def _interval(row: Mapping[str, Any]) -> str:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return "(no interval with 1 seed per configuration)"
    return f"{_ci_text(low, high, int(row['n_runs']))} (95 % bootstrap CI)"


def effect_sentence(row: Mapping[str, Any]) -> str:
    """``explore/cells: motivation=rnd vs motivation=none: 142 → 200 cells (+41 %), Δ +58 [10, 96] (95 % bootstrap
    CI), P(improvement) 0.89, 3 vs 3 seeds``: what was measured, before any test."""
    factor = row["factor"]
    return (
        f"{row['metric']}: {factor}={row['level']} vs {factor}={row['baseline']}: {_change(row)}, "
        f"Δ {_num(row['delta'], signed=True)} {_interval(row)}, P(improvement) {_prob(row['p_improve'])}, "
        f"{_seeds_text(row)}"
    )


def _plan(row: Mapping[str, Any], level: float) -> str:
    """How many seeds per configuration would give 80 % power at the effect and spread seen, and over the effect's
    Welch interval (the same plan ``rlsweep seeds --dry-run`` prints); empty where the spread is unknown."""
    plan = seed_plan(float(row["delta"]), float(row["sd"]), float(row["welch_low"]), float(row["welch_high"]), level)
    return plan.text() if plan else ""


@dataclass(frozen=True)
class AnswerLine:
    """One comparison of the answer: the effect in words, the test that decided, the verdict."""

    text: str  # effect_sentence
    test: str  # the test, its p-value and level, or the sequential test's state; "" where nothing is tested
    verdict: str  # "higher", "lower", "not decided", ...; "" where nothing is tested
    plan: str = ""  # for an open comparison: the seeds that 80 % power would take
    key: tuple[str, ...] = ()  # (metric, factor, level, baseline) of a comparison

    def sentence(self) -> str:
        """The line as one plain sentence, for summary.md and the W&B report."""
        parts = [self.text] + [x for x in (self.test, self.plan) if x]
        return "; ".join(parts) + (f": **{self.verdict}**" if self.verdict else "")


def _key(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in ("metric", "factor", "level", "baseline"))


# rlsweep seeds' decisions, as the answer words them
_SEQUENTIAL_WORDS = {"larger": HIGHER, "smaller": LOWER, "equal": "no difference found within the cap",
                     CONTINUE: OPEN}  # fmt: skip


def _method_name(test: RecordedTest) -> str:
    if test.method == ADASTOP_013:
        # recorded before rlsweep had its own test: its threshold was one-sided, so it rejected at about twice its α
        return "AdaStop of adastop 0.1.3, whose one-sided threshold rejects at about 2α"
    return "two-sided AdaStop"


def _sequential_verdict(row: Mapping[str, Any], tests: Sequence[RecordedTest]) -> tuple[str, str] | None:
    """(test text, verdict) from the earliest sequential test on this metric that covers the comparison, if any."""
    for t in tests:
        if t.metric != row["metric"]:
            continue
        wanted = (str(row["factor"]), str(row["level"]), str(row["baseline"]))
        mine = [c for c in t.comparisons if (c["factor"], c["level"], c["baseline"]) == wanted]
        if not mine:
            continue
        s = t.settings
        words = [_SEQUENTIAL_WORDS.get(t.decisions.get(c["label"], CONTINUE), OPEN) for c in mine]
        if len(set(words)) == 1:
            verdict = words[0]
        else:
            verdict = "; ".join(
                f"{w} [{', '.join(f'{k}={v}' for k, v in c['context'].items())}]"
                for w, c in zip(words, mine, strict=True)
            )
        text = (
            f"sequential test {t.number} of rlsweep seeds ({_method_name(t)}, family-wise α = {s.alpha:g} over "
            f"{len(t.comparisons)} comparison(s) and up to {s.max_looks} looks of {s.n} seed(s)), "
        )
        at = [t.decided_at(c["label"]) for c in mine]
        if all(a is not None for a in at):
            text += f"decided at look {max(a for a in at if a is not None)} of {s.max_looks}"
        else:
            text += f"open after look {len(t.looks)} of {s.max_looks}"
        return text, verdict
    return None


def answer_lines(
    results: Sequence[_MetricResult],
    labels: Mapping[str, str],
    tests: Sequence[RecordedTest] = (),
    alpha: float = ALPHA,
) -> list[AnswerLine]:
    """The answer: one line per comparison (each level against its baseline) and primary metric, or per
    configuration when no factor varies.

    One decision rule: a comparison that a sequential test of ``rlsweep seeds`` covers (``tests``, the earliest on
    the metric) takes that test's decision; the others form one family, held at ``alpha`` family-wise by Holm over
    their permutation tests (:mod:`rlsweep.analysis.verdicts`). Intervals only describe.
    """
    rows = [row for res in results if res.primary for row in res.effects.to_dict("records")]
    sequential = [_sequential_verdict(row, tests) for row in rows]
    family = [row for row, seq in zip(rows, sequential, strict=True) if seq is None]
    verdicts = iter(decide([PermutationTest.from_row(r) for r in family], alpha, [int(r["n_pairs"]) for r in family]))
    lines = []
    for row, seq in zip(rows, sequential, strict=True):
        if seq is not None:
            lines.append(AnswerLine(effect_sentence(row), *seq, key=_key(row)))
            continue
        v = next(verdicts)
        plan = "" if v.decided else _plan(row, alpha / v.family)
        lines.append(AnswerLine(effect_sentence(row), v.why(), v.decision, plan, _key(row)))
    for res in results:
        if res.primary and not len(res.effects):
            lines += _reference_lines(res, labels, alpha)
    return lines


def _reference_lines(res: _MetricResult, labels: Mapping[str, str], alpha: float) -> list[AnswerLine]:
    """No factor varies: each configuration against the reference it is known by (random play's score on an Atari
    game, by a sign-flip test), else its value alone."""
    rows = res.summary.to_dict("records")
    tested = [(row, res.reference[str(row["name"])]) for row in rows if str(row["name"]) in res.reference]
    verdicts = iter(decide([t for _, (_, _, t) in tested], alpha))
    lines = []
    for row in rows:
        name = str(row["name"])
        text = (
            f"{res.metric}: {labels.get(name, name)}: IQM {_num(row['iqm'])} "
            f"{_ci_text(row['iqm_ci_low'], row['iqm_ci_high'], int(row['n_used']))} (95 % bootstrap CI), mean "
            f"{_num(row['mean'])}, {row['n_used']} seed(s)"
        )
        if name not in res.reference:
            lines.append(AnswerLine(text + "; no factor varies and no reference score is known for this env", "", ""))
            continue
        what, value, test = res.reference[name]
        v = next(verdicts)
        why = (
            f"against {what}'s score {_num(value)} (Badia et al. 2020): exact sign-flip test ({test.arrangements} sign "
            "patterns), "
            f"p = {test.p:.2g}, α = {alpha:g}"
        )
        if not v.decided and test.p_min * v.family > alpha:
            need = next(n for n in range(1, 64) if 2 / 2**n <= alpha / v.family)
            why += (
                f"; with {row['n_used']} seeds the smallest possible p is {test.p_min:.2g}: {need} seeds could decide"
            )
        verdict = {HIGHER: f"above {what}", LOWER: f"below {what}"}.get(v.decision, OPEN)
        lines.append(AnswerLine(text, why, verdict))
    return lines


def _references(data: SweepData, metric: str) -> dict[str, tuple[str, float, PermutationTest]]:
    """Per configuration of an Atari game with a known random-play score: that score and the sign-flip test of the
    runs' final scores against it (completed runs; unfinished ones where none completed, as everywhere)."""
    if metric != SCORE or "env" not in data.choice_columns:
        return {}
    out = {}
    for name, grp in final_per_run(data, metric).groupby("name", sort=True):
        env = str(grp["env"].iloc[0])
        if env not in REFERENCE_SCORES or env not in ATARI_GAMES:
            continue
        done = grp[grp["status"] == COMPLETED]
        values = (done if len(done) else grp)["final"].to_numpy(dtype=float)
        if np.isfinite(values).any():
            random_play = REFERENCE_SCORES[env][0]
            out[str(name)] = ("random play", random_play, sign_flip_test(values, random_play))
    return out


def few_seeds_note(data: SweepData, results: Sequence[_MetricResult]) -> str | None:
    """A note when the intervals rest on fewer than :data:`FEW_SEEDS` seeds per configuration."""
    used = [int(n) for r in results if r.primary for n in r.summary["n_used"]]
    if not used or min(used) >= FEW_SEEDS:
        return None
    n = min(used)
    return (
        f"Few seeds: {n} per configuration at the least. A percentile bootstrap over {n} seeds can only recombine "
        f"those {n} values, so its 95 % interval is close to their range and covers less than 95 % of the time: the "
        f"intervals describe, the verdicts come from the permutation tests (or rlsweep seeds' sequential test), "
        f"whose error rates hold at any seed count. `rlsweep seeds {data.sweep_dir}` adds seeds only where a "
        "comparison is open."
    )


@dataclass(frozen=True)
class _Answer:
    """The report's opening, computed once for ``summary.md`` and ``report.html``."""

    lines: list[AnswerLine]
    family: str  # how the verdicts were reached, in one sentence
    few_seeds: str | None  # few_seeds_note
    sequential: list[list[str]]  # sequential_lines: every test rlsweep seeds ran, a heading and a line per comparison

    def verdict_of(self, row: Mapping[str, Any]) -> str:
        """The verdict of an effects row (a primary metric's comparison); "" for a row outside the answer."""
        key = _key(row)
        return next((x.verdict for x in self.lines if x.key == key), "")


def _family_text(lines: Sequence[AnswerLine], tests: Sequence[RecordedTest], alpha: float) -> str:
    tested = [x for x in lines if x.verdict]
    if not tested:
        return ""
    by_test = sum(1 for x in tested if x.test.startswith("sequential test"))
    fixed = len(tested) - by_test
    parts = []
    if fixed:
        parts.append(
            f"1 comparison tested by a two-sided permutation test at α = {alpha:g}"
            if fixed == 1
            else f"{fixed} comparisons tested by two-sided permutation tests, held at α = {alpha:g} family-wise by "
            "Holm's procedure over all of them"
        )
    if by_test:
        parts.append(
            ("1 comparison takes" if by_test == 1 else f"{by_test} comparisons take")
            + " the decision of rlsweep seeds' sequential test, which holds its own family at its α"
        )
    return "Verdicts: " + "; ".join(parts) + ". The intervals describe the data; they decide nothing."


def _answer(
    data: SweepData, results: Sequence[_MetricResult], labels: Mapping[str, str], alpha: float = ALPHA
) -> _Answer:
    tests = [t for d in (data.sweep_dirs or [data.sweep_dir]) for t in load_tests(d)]
    lines = answer_lines(results, labels, tests, alpha)
    return _Answer(lines, _family_text(lines, tests, alpha), few_seeds_note(data, results), sequential_lines(tests))


def sequential_lines(tests: Sequence[RecordedTest]) -> list[list[str]]:
    """Every test ``rlsweep seeds`` ever ran on the sweep (``seeds.json``), so that a reader sees every look: per test
    a heading with its settings, then one line per comparison with its decision and the look that made it."""
    out = []
    for t in tests:
        s = t.settings
        base = ", ".join(f"{k}={v}" for k, v in t.baselines.items()) or "the first level of each factor"
        head = (
            f"Sequential test {t.number} (rlsweep seeds, {_method_name(t)}): {t.metric}, family-wise α {s.alpha:g}, "
            f"n = {s.n} seed(s) per look, at most {s.max_looks} looks, baselines {base}; {len(t.looks)} look(s) "
            f"taken, {t.status}"
        )
        if t.data_changed:
            head += f"; {t.data_changed}"
        lines = [head]
        for c in t.comparisons:
            decision = t.decisions.get(c["label"], CONTINUE)
            at = t.decided_at(c["label"])
            lines.append(f"{c['label']}: {decision}" + (f" (decided at look {at})" if at else ""))
        out.append(lines)
    return out


# ------------------------------------------------------------------------------------------------ markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*out, ""]


def _config_rows(res: _MetricResult, labels: Mapping[str, str]) -> list[list[str]]:
    return [
        [
            labels.get(str(row["name"]), str(row["name"])),
            f"{row['n_completed']}/{row['n_seeds_expected']}",
            _num(row["iqm"]),
            _ci_text(row["iqm_ci_low"], row["iqm_ci_high"], row["n_used"]),
            _num(row["mean"]),
            _ci_text(row["mean_ci_low"], row["mean_ci_high"], row["n_used"]),
            str(row["notes"]) or NO_VALUE,
        ]
        for _, row in res.summary.iterrows()
    ]


_CONFIG_HEADER = ["configuration", "seeds (completed/total)", "IQM", "IQM 95 % CI", "mean", "mean 95 % CI", "notes"]


def _effect_rows(res: _MetricResult) -> list[list[str]]:
    rows = []
    for r in res.effects.to_dict("records"):
        row = [
            f"{r['factor']}={r['level']} vs {r['factor']}={r['baseline']}",
            f"{_num(r['base_mean'])} → {_num(r['level_mean'])}",
            _num(r["delta"], signed=True),
            _ci_text(r["ci_low"], r["ci_high"], r["n_runs"]),
            _prob(r["p_improve"]),
            f"{r['n_level']} vs {r['n_base']}",
            str(r["n_pairs"]),
            str(r["unmatched"]) or NO_VALUE,
        ]
        if res.primary:
            row += [f"{r['p']:.2g}" if math.isfinite(r["p"]) else NO_VALUE, r["verdict"] or NO_VALUE]
        rows.append(row)
    return rows


_EFFECT_HEADER = ["comparison", "baseline → level", "Δ", "Δ 95 % CI", "P(improvement)", "runs", "matched settings",
                  "unmatched"]  # fmt: skip
# A primary metric's comparisons are the answer's: their test and verdict too. Other metrics' effects describe only
# (no p-value: one outside the answer's family would be read as a finding it does not control).
_VERDICT_HEADER = ["permutation p", "verdict"]


def _effect_header(res: _MetricResult) -> list[str]:
    return _EFFECT_HEADER + (_VERDICT_HEADER if res.primary else [])


def _ablation_rows(res: _MetricResult) -> list[list[str]]:
    return [
        [
            f"{r['factor']}={r['level']}",
            _num(r["mean"]),
            _ci_text(r["ci_low"], r["ci_high"], r["n_runs"]),
            _num(r["delta"], signed=True),
            str(r["n_runs"]),
            str(r["n_configs"]),
        ]
        for _, r in res.ablation.iterrows()
    ]


_ABLATION_HEADER = ["level", "mean", "95 % CI", "Δ vs first level", "runs", "configurations"]


def _markdown(
    data: SweepData,
    results: list[_MetricResult],
    generated: str,
    methods: str,
    folded: Mapping[str, float],
    attention: Sequence[str],
    answer: _Answer,
    labels: Mapping[str, str],
) -> str:
    lines = [f"# Sweep report: {_title(data)}", ""]
    lines += [f"{_where(data)} — generated {generated}. {_counts(data)}", ""]
    lines += ["## Answer", "", *[f"- {x.sentence()}" for x in answer.lines], ""]
    if answer.family:
        lines += [answer.family, ""]
    if answer.few_seeds:
        lines += [f"> {answer.few_seeds}", ""]
    for test in answer.sequential:
        lines += [test[0], "", *[f"- {x}" for x in test[1:]], ""]
    glossary = _glossary(results)
    if glossary:
        lines += ["What the metrics count:", "", *[f"- `{m}`: {text}" for m, text in glossary], ""]
    if attention:
        lines += ["## Attention", "", *[f"- {a}" for a in attention], ""]
    if folded:
        lines += [_folded_text(folded), ""]
    for res in results:
        lines += [f"## {_section_title(res)}", ""]
        lines += _md_table(_CONFIG_HEADER, _config_rows(res, labels))
        if len(res.effects):
            title = "Effects, other factors held fixed" + ("" if res.primary else " (descriptive)")
            lines += [f"{title}:", "", *_md_table(_effect_header(res), _effect_rows(res))]
        if len(res.ablation) and len(data.factors) >= 2:
            lines += ["Averaged over the other factors:", "", *_md_table(_ABLATION_HEADER, _ablation_rows(res))]
    lines += ["## Method", "", methods.replace("\n", " "), ""]
    return "\n".join(lines)


def _section_title(res: _MetricResult) -> str:
    if res.cost:
        return f"Cost: {res.metric} (no verdicts: the speed of the machine the run had, under its load)"
    return res.metric + (" (primary)" if res.primary else "")


def _glossary(results: Sequence[_MetricResult]) -> list[tuple[str, str]]:
    """What each metric the report shows counts, for those it knows."""
    return [(r.metric, GLOSSARY[r.metric]) for r in results if r.metric in GLOSSARY]


def _title(data: SweepData) -> str:
    return ", ".join(data.sweep_names) or data.sweep_dir.name


def _where(data: SweepData) -> str:
    return ", ".join(f"`{d}`" for d in (data.sweep_dirs or [data.sweep_dir]))


def _counts(data: SweepData) -> str:
    n_done = int((data.runs["status"] == COMPLETED).sum())
    return (
        f"{len(data.runs)} runs, {len(data.configs)} configurations, seeds {data.seeds}, {n_done} completed; "
        f"factors: {', '.join(data.factors) or 'none'}."
    )


def _folded_text(folded: Mapping[str, float]) -> str:
    items = ", ".join(f"{m} = {_num(v)}" for m, v in folded.items())
    return f"Constant in every logged line of every run, so not shown further: {items}."


def _attention(data: SweepData) -> list[str]:
    """Everything that can make a comparison misleading, one line each."""
    out = []
    for row in data.runs[data.runs["flags"] != ""].itertuples(index=False):
        out.append(f"run {row.run_id}: {row.flags}")
    for row in data.configs[data.configs["flags"] != ""].itertuples(index=False):
        out.append(f"configuration {row.name}: {row.flags}")
    out.extend(data.issues)
    if "env" in data.factors:
        # Raw values of different games live on different scales; an effect averaged over envs mixes them.
        normalised = NORMALISED in data.metric_names
        out.append(
            "factor env varies: effects of the other factors average over environments; "
            + (
                f"{NORMALISED} puts every game's score on one scale (0 = random or Procgen's R_min, 1 = human or "
                "R_max), the other metrics are averaged raw"
                if normalised
                else "their raw values are averaged"
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------- HTML


def _code_spans(text: str) -> str:
    """Escape ``text`` for HTML, with Markdown's `code` spans as <code> elements."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _img(path: Path, caption: str) -> str:
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{payload}">'
        f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    # The wrapper scrolls sideways instead of the page when a table is wider than the text column.
    return f"<div class='tablewrap'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
.tablewrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td{overflow-wrap:break-word} th{white-space:nowrap}
th{background:#f2f2f2} tr.warn{background:#fff4d6} tr.bad{background:#fde0e0}
.answer{border-left:4px solid #2a7ab8;background:#eef6fc;padding:.5em 1em}
.answer li{margin:.3em 0} .verdict{font-weight:600} .higher{color:#1a7f37} .lower{color:#b42318}
.attention{border-left:4px solid #d98c00;background:#fff8e6;padding:.5em 1em}
.note{border-left:4px solid #999;background:#f6f6f6;padding:.4em 1em;font-size:.9em}
.method{font-size:.9em;color:#444} img{max-width:100%} figure{margin:1em 0}
figcaption{font-size:.8em;color:#666} code{overflow-wrap:break-word}
"""


def _verdict_class(verdict: str) -> str:
    return {HIGHER: "higher", LOWER: "lower"}.get(verdict, "open")


def _html(
    data: SweepData,
    results: list[_MetricResult],
    generated: str,
    attention: Sequence[str],
    methods: str,
    folded: Mapping[str, float],
    answer_png: Path | None,
    answer: _Answer,
    labels: Mapping[str, str],
) -> str:
    title = f"Sweep report: {_title(data)}"
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(_where(data).replace('`', ''))} — generated {html.escape(generated)}. "
        f"{html.escape(_counts(data))}</p>",
    ]
    items = []
    for x in answer.lines:
        rest = "".join(f"; {html.escape(t)}" for t in (x.test, x.plan) if t)
        verdict = (
            f": <span class='verdict {_verdict_class(x.verdict)}'>{html.escape(x.verdict)}</span>" if x.verdict else ""
        )
        items.append(f"<li>{html.escape(x.text)}{rest}{verdict}</li>")
    family = f"<p>{html.escape(answer.family)}</p>" if answer.family else ""
    parts.append(f"<div class='answer' id='answer'><h2>Answer</h2><ul>{''.join(items)}</ul>{family}</div>")
    if answer_png is not None:
        parts.append(_img(answer_png, "the answer: effect of each factor on the primary metric(s), 95 % bootstrap CI, "
                                      "coloured by the verdict"))  # fmt: skip
    if answer.few_seeds:
        parts.append(f"<p class='note'>{_code_spans(answer.few_seeds)}</p>")
    for test in answer.sequential:
        lis = "".join(f"<li>{html.escape(x)}</li>" for x in test[1:])
        parts.append(f"<div class='note'><p>{html.escape(test[0])}</p><ul>{lis}</ul></div>")
    glossary = _glossary(results)
    if glossary:
        lis = "".join(f"<li><code>{html.escape(m)}</code>: {html.escape(text)}</li>" for m, text in glossary)
        parts.append(f"<div class='note'><p>What the metrics count:</p><ul>{lis}</ul></div>")
    if attention:
        lis = "".join(f"<li>{html.escape(a)}</li>" for a in attention)
        parts.append(f"<div class='attention'><h2>Attention</h2><ul>{lis}</ul></div>")
    if folded:
        parts.append(f"<p class='note'>{html.escape(_folded_text(folded))}</p>")
    parts.append("<h2>Contents</h2><ul>")
    parts += [f"<li><a href='#{slug(r.metric)}'>{html.escape(_section_title(r))}</a></li>" for r in results]
    parts.append("<li><a href='#method'>Method</a></li><li><a href='#runs'>Runs</a></li></ul>")

    for res in results:
        parts.append(f"<h2 id='{slug(res.metric)}'>{html.escape(_section_title(res))}</h2>")
        classes = [
            "bad" if row["provisional"] else ("warn" if row["notes"] else "") for _, row in res.summary.iterrows()
        ]
        parts.append(_table(_CONFIG_HEADER, _config_rows(res, labels), classes))
        if len(res.effects):
            rows = _effect_rows(res)
            title = "Effects, other factors held fixed" + ("" if res.primary else " (descriptive)")
            parts.append(f"<h3>{title}</h3>")
            unmatched = _EFFECT_HEADER.index("unmatched")
            parts.append(_table(_effect_header(res), rows, ["warn" if r[unmatched] != NO_VALUE else "" for r in rows]))
        if len(res.ablation) and len(data.factors) >= 2:
            parts.append("<h3>Averaged over the other factors</h3>")
            parts.append(_table(_ABLATION_HEADER, _ablation_rows(res)))
        parts += [_img(path, caption) for caption, path in res.figures]

    parts.append(f"<h2 id='method'>Method</h2><p class='method'>{html.escape(methods)}</p>")
    parts.append("<h2 id='runs'>Runs</h2>")
    run_rows, run_classes = [], []
    for _, r in data.runs.iterrows():
        run_rows.append(
            [
                str(r["run_id"]),
                labels.get(str(r["name"]), str(r["name"])),
                str(r["seed"]),
                str(r["status"]),
                _num(100 * r["progress"]) + " %",
                str(r["n_logged"]),
                str(r["wandb_id"] or NO_VALUE),
                str(r["flags"]) or NO_VALUE,
            ]
        )
        run_classes.append("bad" if r["status"] == "failed" else ("warn" if r["unfinished"] or r["flags"] else ""))
    header = ["run", "configuration", "seed", "status", "progress", "lines", "W&B id", "flags"]
    parts.append(_table(header, run_rows, run_classes))
    parts.append("<h2>Configurations</h2>")
    cfg_rows = [
        [
            labels.get(str(r["name"]), str(r["name"])),
            str(r["name"]),
            f"{r['n_completed']}/{r['n_runs']}",
            ", ".join(map(str, r["seeds"])),
            ", ".join(map(str, r["missing_seeds"])) or NO_VALUE,
            str(r["flags"]) or NO_VALUE,
        ]
        for _, r in data.configs.iterrows()
    ]
    parts.append(
        _table(
            ["configuration", "run name", "completed/runs", "seeds", "missing seeds", "flags"],
            cfg_rows,
            ["warn" if row[5] != NO_VALUE else "" for row in cfg_rows],
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------- writing


def write_report(
    sweep_dir: Path | str | Sequence[Path | str],
    out_dir: Path | str | None = None,
    metrics: Sequence[str] | None = None,
    *,
    baselines: Sequence[str] = (),
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Path:
    """Write the report of ``sweep_dir`` (one directory or several read as one sweep) into ``out_dir``
    (default: ``<first sweep_dir>/report``).

    Args:
        metrics: the primary metric(s), which the answer is about; default :func:`primary_metrics`. Requested
            metrics no run logged are listed under "Attention". The metrics of :data:`DEFAULT_METRICS` that
            were logged follow as secondary sections.
        baselines: ``factor=level`` items: the level each factor's other levels are compared against
            (default: the first level, sorted).
        n_resamples, seed: bootstrap settings (the defaults make reports reproducible).

    Returns:
        the path of ``report.html``. Next to it: ``summary.md`` (the same answer first), ``summary.csv`` (one
        row per metric x configuration), ``effects.csv`` (other factors held fixed), ``ablation.csv``
        (averaged over other factors), ``runs.csv`` and the PNG figures.

    Raises:
        ValueError: a baseline that names no factor or level of the sweep, or a sweep without runs.
    """
    data = load_sweep(sweep_dir)
    no_reference = add_normalised_score(data)
    base = parse_baselines(data, baselines)
    out = Path(out_dir) if out_dir is not None else data.sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    chosen = chosen_metrics(data, metrics)
    primary = set(metrics or primary_metrics(data))
    missing = [m for m in (metrics or []) if m not in chosen]
    folded = constant_metrics(data, chosen)
    shown = [m for m in chosen if m not in folded]

    colors = config_colors(list(data.configs["name"]))
    labels = config_labels(data)
    results: list[_MetricResult] = []
    for metric in shown:
        cost = metric.startswith(COST_PREFIX)
        res = _MetricResult(
            metric,
            metric in primary and not cost,
            summarize(data, metric, n_resamples=n_resamples, seed=seed),
            ablation_table(data, metric, n_resamples=n_resamples, seed=seed),
            # The machine's speed under its load is a cost to describe, not an effect to test.
            pd.DataFrame(columns=EFFECT_COLUMNS) if cost
            else paired_effects(data, metric, n_resamples=n_resamples, seed=seed, baselines=base),
            cost=cost,
        )  # fmt: skip
        if res.primary and not data.factors:
            res.reference = _references(data, metric)
        results.append(res)
    answer = _answer(data, results, labels)
    for res in results:
        # Each effects row carries its verdict from here on: the tables, the figures' colours and effects.csv.
        res.effects = res.effects.assign(verdict=[answer.verdict_of(r) for r in res.effects.to_dict("records")])
    for res in results:
        name = slug(res.metric)
        curves = learning_curves(data, res.metric, n_resamples=n_resamples, seed=seed)
        per_run = final_per_run(data, res.metric)
        res.figures = [
            # Curves first: how the runs got there, then where they ended.
            ("learning curves", plot_learning_curves(curves, res.metric, out / f"{name}_curves.png", colors, labels)),
            ("final performance",
             plot_final_performance(per_run, res.summary, res.metric, out / f"{name}_final.png", colors, labels)),
        ]  # fmt: skip
        if res.primary:
            res.figures.append(
                ("performance profile: fraction of runs above each final value",
                 plot_performance_profile(per_run, res.metric, out / f"{name}_profile.png", colors, labels))
            )  # fmt: skip
        if len(res.effects):
            res.figures.append(
                ("effects, other factors held fixed" + ("" if res.primary else " (descriptive: no verdicts)"),
                 plot_paired_effects(res.effects, res.metric, out / f"{name}_effects.png"))
            )  # fmt: skip
        if len(data.factors) >= 2 and len(res.ablation):
            # Averaged over the other factors says nothing new with one factor (it is the per-level table).
            res.figures.append(
                ("averaged over the other factors",
                 plot_ablation(res.ablation, res.metric, out / f"{name}_ablation.png"))
            )  # fmt: skip

    answered = {r.metric: r.effects for r in results if r.primary and len(r.effects)}
    answer_png = plot_answer(answered, out / "answer.png") if answered else None
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Every table keeps its header when it has no rows (a sweep where no factor varies has no effects), so that a
    # script reading the CSV gets its columns, never an empty file.
    columns = {"summary": list(results[0].summary.columns) if results else ["metric", "name"],
               "ablation": ABLATION_COLUMNS, "effects": [*EFFECT_COLUMNS, "verdict"]}  # fmt: skip
    for attr, file in (("summary", "summary.csv"), ("ablation", "ablation.csv"), ("effects", "effects.csv")):
        frames = [getattr(r, attr) for r in results if len(getattr(r, attr))]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns[attr])
        table.to_csv(out / file, index=False)
    data.runs.to_csv(out / "runs.csv", index=False)
    methods = methods_text(n_resamples, seed)
    attention = _attention(data) + [f"metric {m} requested but not logged by any run" for m in missing]
    attention += [f"env={e}: no reference scores, so its runs are left out of {NORMALISED}" for e in no_reference]
    md = _markdown(data, results, generated, methods, folded, attention, answer, labels)
    (out / "summary.md").write_text(md, "utf-8")
    report = out / "report.html"
    page = _html(data, results, generated, attention, methods, folded, answer_png, answer, labels)
    report.write_text(page, encoding="utf-8")
    return report
