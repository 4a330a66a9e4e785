"""The sweep report: ``report.html`` (self-contained), ``summary.md``, CSV tables and the PNGs.

:func:`write_report` is what ``rlsweep report <sweep_dir>...`` calls. The report answers the ablation question
first: what each factor did to the primary metric(s), as an effect with its 95 % CI and the probability of
improvement, in words and one figure. What could mislead comes next (unfinished or failed runs, missing
seeds, few seeds, read problems), then one section per metric, for a tune's search or confirm sweep what the
search found (:mod:`rlsweep.analysis.tuning`), the method, and the runs. Configurations are
labelled by the factors that vary (``motivation=rnd``), never by their long run names, and an undefined
value reads the same in every table. The HTML embeds every figure as a base64 ``data:`` URI so the single file
can be mailed; the PNG files are kept next to it for slides.

This module owns what the report contains and in which order. How each statistic reads, in the tables and in the
answer's sentences, is declared once in :mod:`rlsweep.analysis.report_stats`; the tables are rendered once and
written into ``summary.md`` and into the page, which ``templates/report.html.j2`` lays out (autoescaped).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
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
from rlsweep.analysis.report_stats import COMPARISON, CONFIGURATION, COVERAGE, LEVEL, RUN, Rendered, num
from rlsweep.analysis.sequential import ADASTOP_013, CONTINUE, RecordedTest, load_tests
from rlsweep.analysis.stats import (
    ABLATION_COLUMNS,
    BOOTSTRAP_SEED,
    EFFECT_COLUMNS,
    FINAL_FRACTION,
    N_RESAMPLES,
    ablation_table,
    final_per_run,
    interval_columns,
    learning_curves,
    paired_effects,
    summarize,
)
from rlsweep.analysis.tuning import TuningFound, read_tuning, section_figures, section_lines, section_tables
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


def effect_sentence(row: Mapping[str, Any]) -> str:
    """``explore/cells: motivation=rnd vs motivation=none: 142 → 200 cells (+41 %), Δ +58 [10, 96] (95 % bootstrap
    CI), P(improvement) 0.89, 3 vs 3 seeds``: what was measured, before any test (the phrases of
    :data:`~rlsweep.analysis.report_stats.COMPARISON`)."""
    return COMPARISON.sentence(row)


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
        text = CONFIGURATION.sentence({**row, "label": labels.get(name, name)})
        if name not in res.reference:
            lines.append(AnswerLine(text + "; no factor varies and no reference score is known for this env", "", ""))
            continue
        what, value, test = res.reference[name]
        v = next(verdicts)
        why = (
            f"against {what}'s score {num(value)} (Badia et al. 2020): exact sign-flip test ({test.arrangements} sign "
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


# ------------------------------------------------------------------------------------- tables and markdown


def _labelled(frame: pd.DataFrame, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """``frame``'s records with ``label``: the configuration named by the factors that vary (:func:`config_labels`)."""
    return [{**r, "label": labels.get(str(r["name"]), str(r["name"]))} for r in frame.to_dict("records")]


def _metric_tables(data: SweepData, res: _MetricResult, labels: Mapping[str, str]) -> list[tuple[str, Rendered]]:
    """A metric's tables, each with its title ("" for the first, which the section's heading names), rendered once
    for summary.md and report.html."""
    metric = res.metric  # with the statistics report_stats declares for this metric only
    tables = [("", CONFIGURATION.render(_labelled(res.summary, labels), metric=metric))]
    if len(res.effects):
        title = "Effects, other factors held fixed" + ("" if res.primary else " (descriptive)")
        tables.append((title, COMPARISON.render(res.effects.to_dict("records"), tested=res.primary, metric=metric)))
    if len(res.ablation) and len(data.factors) >= 2:
        averaged = LEVEL.render(res.ablation.to_dict("records"), metric=metric)
        tables.append(("Averaged over the other factors", averaged))
    return tables


def _markdown(
    data: SweepData,
    results: list[_MetricResult],
    generated: str,
    methods: str,
    folded: Mapping[str, float],
    attention: Sequence[str],
    answer: _Answer,
    labels: Mapping[str, str],
    tuning: TuningFound | None = None,
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
        for title, table in _metric_tables(data, res, labels):
            lines += [f"{title}:", ""] if title else []
            lines += table.markdown()
    if tuning is not None:
        lines += [f"## {TUNING_TITLE}", "", *(x for line in section_lines(tuning) for x in (line, ""))]
        for title, table in section_tables(tuning):
            lines += [f"{title}:", "", *table.markdown()]
    lines += ["## Method", "", methods.replace("\n", " "), ""]
    return "\n".join(lines)


TUNING_TITLE = "Tuning: what the search found"


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
    items = ", ".join(f"{m} = {num(v)}" for m, v in folded.items())
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


@dataclass(frozen=True)
class _Figure:
    """A PNG as the page embeds it: a base64 ``data:`` URI, so that the page is one file that can be mailed."""

    caption: str
    name: str  # the PNG's file name beside the page, for slides
    payload: str

    @classmethod
    def of(cls, path: Path, caption: str) -> _Figure:
        return cls(caption, path.name, base64.b64encode(path.read_bytes()).decode("ascii"))


def _verdict_class(verdict: str) -> str:
    return {HIGHER: "higher", LOWER: "lower"}.get(verdict, "open")


# Autoescape on: every value the page shows is text (run names, metric names, notes) and is escaped by the template.
# StrictUndefined: a name the template misspells fails the report instead of leaving a gap in the page.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("rlsweep.analysis", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_TEMPLATES.filters["verdict_class"] = _verdict_class


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
    tuning: TuningFound | None = None,
    tuning_figures: Sequence[tuple[str, Path]] = (),
) -> str:
    """The page, from ``templates/report.html.j2``: the same answer and tables as :func:`_markdown`, and the figures."""
    answer_caption = (
        "the answer: effect of each factor on the primary metric(s), 95 % bootstrap CI, coloured by the verdict"
    )
    sections = [
        {
            "id": slug(res.metric),
            "title": _section_title(res),
            "tables": _metric_tables(data, res, labels),
            "figures": [_Figure.of(path, caption) for caption, path in res.figures],
            "notes": [],
        }
        for res in results
    ]
    if tuning is not None:
        sections.append({"id": "tuning", "title": TUNING_TITLE, "notes": section_lines(tuning),
                         "tables": section_tables(tuning),
                         "figures": [_Figure.of(path, caption) for caption, path in tuning_figures]})  # fmt: skip
    return _TEMPLATES.get_template("report.html.j2").render(
        title=f"Sweep report: {_title(data)}",
        where=_where(data).replace("`", ""),
        generated=generated,
        counts=_counts(data),
        answer=answer,
        answer_figure=_Figure.of(answer_png, answer_caption) if answer_png is not None else None,
        glossary=_glossary(results),
        attention=attention,
        folded=_folded_text(folded) if folded else "",
        sections=sections,
        methods=methods,
        runs=RUN.render(_labelled(data.runs, labels)),
        configurations=COVERAGE.render(_labelled(data.configs, labels)),
    )


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
    tuning = read_tuning(data.sweep_dir)  # a tune's search or confirm sweep: what the search found
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
    # the numbers paired_effects computes for the statistics report_stats declares beyond its own
    effect_columns = [*EFFECT_COLUMNS, *interval_columns(COMPARISON.two_samples())]
    results: list[_MetricResult] = []
    for metric in shown:
        cost = metric.startswith(COST_PREFIX)
        res = _MetricResult(
            metric,
            metric in primary and not cost,
            summarize(data, metric, n_resamples=n_resamples, seed=seed, aggregates=CONFIGURATION.aggregates(metric)),
            ablation_table(data, metric, n_resamples=n_resamples, seed=seed),
            # The machine's speed under its load is a cost to describe, not an effect to test.
            pd.DataFrame(columns=effect_columns) if cost
            else paired_effects(data, metric, n_resamples=n_resamples, seed=seed, baselines=base,
                                two_sample=COMPARISON.two_samples(metric)),
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
               "ablation": ABLATION_COLUMNS, "effects": [*effect_columns, "verdict"]}  # fmt: skip
    for attr, file in (("summary", "summary.csv"), ("ablation", "ablation.csv"), ("effects", "effects.csv")):
        frames = [getattr(r, attr) for r in results if len(getattr(r, attr))]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns[attr])
        table.to_csv(out / file, index=False)
    data.runs.to_csv(out / "runs.csv", index=False)
    methods = methods_text(n_resamples, seed)
    attention = _attention(data) + [f"metric {m} requested but not logged by any run" for m in missing]
    attention += [f"env={e}: no reference scores, so its runs are left out of {NORMALISED}" for e in no_reference]
    tuning_figures = section_figures(tuning, out) if tuning is not None else []
    md = _markdown(data, results, generated, methods, folded, attention, answer, labels, tuning)
    (out / "summary.md").write_text(md, "utf-8")
    report = out / "report.html"
    page = _html(data, results, generated, attention, methods, folded, answer_png, answer, labels, tuning,
                 tuning_figures)  # fmt: skip
    report.write_text(page, encoding="utf-8")
    return report
