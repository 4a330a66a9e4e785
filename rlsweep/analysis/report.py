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

import numpy as np
import pandas as pd

from rlsweep.analysis.load import COMPLETED, SweepData, load_sweep
from rlsweep.analysis.normalise import NORMALISED, add_normalised_score
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
from rlsweep.analysis.stats import (
    BOOTSTRAP_SEED,
    FINAL_FRACTION,
    N_RESAMPLES,
    Interval,
    ablation_table,
    final_per_run,
    learning_curves,
    paired_effects,
    summarize,
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
bootstrap. Performance profile: fraction of runs whose final value exceeds each threshold. Learning curves:
every run linearly interpolated onto a common regular grid of 200 steps within its own logged range (no
extrapolation), mean over seeds, 95 % bootstrap band across seeds where at least 2 seeds cover the step.
Averaged over the other factors (2 or more factors): for each level, the mean over configurations at that
level of each configuration's mean (each configuration weighs the same), comparable only when the design is
balanced."""

NO_VALUE = "–"  # a number that does not exist (no run logged it); intervals use Interval.format's wording


def methods_text(n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> str:
    """The report's "Method" paragraph for the settings actually used."""
    return METHODS.format(pct=100 * FINAL_FRACTION, keep=1 - FINAL_FRACTION, n_resamples=n_resamples, seed=seed)


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


def verdict(row: Mapping[str, object]) -> str:
    """What the effect's CI says, in words (higher is better for every primary metric)."""
    low, high = float(row["ci_low"]), float(row["ci_high"])  # type: ignore[arg-type]
    if math.isnan(low) or math.isnan(high):
        return "no interval with 1 seed per configuration"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "not resolved at this many seeds (the CI contains 0)"


def effect_sentence(row: Mapping[str, object]) -> str:
    """``motivation=rnd − motivation=none: +35.3 cells [10.3, 56.6], P(improvement) 0.89 [...], 3 vs 3 seeds``
    (the verdict, :func:`verdict`, is kept apart so that each output can set it off its own way)."""
    factor, level, base = row["factor"], row["level"], row["baseline"]
    metric = str(row["metric"])
    text = (
        f"{factor}={level} − {factor}={base}: {_num(row['delta'], signed=True)} {short_metric(metric)} "
        f"{_ci_text(row['ci_low'], row['ci_high'], int(row['n_runs']))}, "  # type: ignore[arg-type, call-overload]
        f"P(improvement) {_prob(row['p_improve'])} "
        f"{_prob_ci(row['p_ci_low'], row['p_ci_high'], int(row['n_runs']))}, "  # type: ignore[arg-type, call-overload]
    )
    if int(row["n_pairs"]) > 1:  # type: ignore[call-overload]
        text += (
            f"{row['n_level']} vs {row['n_base']} runs over {row['n_pairs']} matched settings of {row['held_fixed']}"
        )
    else:
        text += f"{row['n_level']} vs {row['n_base']} seeds"
    return text


def few_seeds_note(data: SweepData, results: Sequence[_MetricResult]) -> str | None:
    """A warning when the comparisons rest on fewer than :data:`FEW_SEEDS` seeds per configuration."""
    used = [int(n) for r in results if r.primary for n in r.summary["n_used"]]
    if not used or min(used) >= FEW_SEEDS:
        return None
    n = min(used)
    return (
        f"Few seeds: {n} per configuration at the least. A percentile bootstrap over {n} seeds can only recombine "
        f"those {n} values, so its 95 % interval is close to their range and covers less than 95 % of the time; "
        f"read the intervals as descriptive, and add seeds where a comparison is open "
        f"(`rlsweep seeds {data.sweep_dir}` adds them only there, with a sequential test)."
    )


@dataclass(frozen=True)
class _Answer:
    """The report's opening, computed once for ``summary.md`` and ``report.html``."""

    lines: list[tuple[str, str]]  # (the effect in words, its verdict; "" where nothing is compared)
    few_seeds: str | None  # few_seeds_note
    sequential: list[str]  # sequential_lines: the decisions of rlsweep seeds


def answer_lines(results: Sequence[_MetricResult], labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """The answer in words: one line per comparison and primary metric, or per configuration when no factor
    varies."""
    lines = []
    for res in results:
        if not res.primary:
            continue
        if len(res.effects):
            rows = res.effects.to_dict("records")
            lines += [(f"{res.metric}: {effect_sentence(row)}", verdict(row)) for row in rows]
        else:
            for row in res.summary.to_dict("records"):
                lines.append((
                    f"{res.metric}: {labels.get(str(row['name']), row['name'])}: IQM {_num(row['iqm'])} "
                    f"{_ci_text(row['iqm_ci_low'], row['iqm_ci_high'], int(row['n_used']))}, "
                    f"{row['n_used']} seed(s) (no factor varies, so there is no comparison)",
                    "",
                ))  # fmt: skip
    return lines


def _answer(data: SweepData, results: Sequence[_MetricResult], labels: Mapping[str, str]) -> _Answer:
    return _Answer(answer_lines(results, labels), few_seeds_note(data, results), sequential_lines(data))


def sequential_lines(data: SweepData) -> list[str]:
    """The decisions of ``rlsweep seeds`` (its ``seeds.json``), one line per comparison; empty without one.

    They are the error-controlled answer (AdaStop, family-wise over every comparison and look); the CIs above
    are descriptive, computed over whatever seeds exist now.
    """
    import json

    lines = []
    for d in data.sweep_dirs or [data.sweep_dir]:
        path = d / "seeds.json"
        if not path.is_file():
            continue
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            looks = state.get("looks", [])
            head = (
                f"Sequential test (rlsweep seeds: {state['test']}; {state['metric']}, family-wise alpha "
                f"{state['alpha']:g}, {len(looks)} of at most {state['max_looks']} looks of {state['n']} seed(s); "
                f"{state.get('status', '')})"
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            lines.append(f"{path}: unreadable ({e}); the sequential test's decisions are not shown")
            continue
        lines.append(head)
        for comparison in state.get("comparisons", []):
            label = str(comparison.get("label", "?"))
            lines.append(f"  {label}: {state.get('decisions', {}).get(label, '?')}")
    return lines


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
    return [
        [
            f"{r['factor']}={r['level']} − {r['factor']}={r['baseline']}",
            _num(r["delta"], signed=True),
            _ci_text(r["ci_low"], r["ci_high"], r["n_runs"]),
            _prob(r["p_improve"]),
            _prob_ci(r["p_ci_low"], r["p_ci_high"], r["n_runs"]),
            f"{r['n_level']} vs {r['n_base']}",
            str(r["n_pairs"]),
            str(r["unmatched"]) or NO_VALUE,
        ]
        for _, r in res.effects.iterrows()
    ]


_EFFECT_HEADER = ["comparison", "Δ", "Δ 95 % CI", "P(improvement)", "P 95 % CI", "runs", "matched settings",
                  "unmatched"]  # fmt: skip


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
    lines += ["## Answer", "", *[f"- {text}: {v}" if v else f"- {text}" for text, v in answer.lines], ""]
    if answer.few_seeds:
        lines += [f"> {answer.few_seeds}", ""]
    if answer.sequential:
        lines += [answer.sequential[0], "", *[f"- {x.strip()}" for x in answer.sequential[1:]], ""]
    if attention:
        lines += ["## Attention", "", *[f"- {a}" for a in attention], ""]
    if folded:
        lines += [_folded_text(folded), ""]
    for res in results:
        lines += [f"## {res.metric}" + (" (primary)" if res.primary else ""), ""]
        lines += _md_table(_CONFIG_HEADER, _config_rows(res, labels))
        if len(res.effects):
            lines += ["Effects, other factors held fixed:", "", *_md_table(_EFFECT_HEADER, _effect_rows(res))]
        if len(res.ablation):
            lines += ["Averaged over the other factors:", "", *_md_table(_ABLATION_HEADER, _ablation_rows(res))]
    lines += ["## Method", "", methods.replace("\n", " "), ""]
    return "\n".join(lines)


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
.answer li{margin:.3em 0} .verdict{font-weight:600}
.attention{border-left:4px solid #d98c00;background:#fff8e6;padding:.5em 1em}
.note{border-left:4px solid #999;background:#f6f6f6;padding:.4em 1em;font-size:.9em}
.method{font-size:.9em;color:#444} img{max-width:100%} figure{margin:1em 0}
figcaption{font-size:.8em;color:#666} code{overflow-wrap:break-word}
"""


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
    items = [
        f"<li>{html.escape(text)}: <span class='verdict'>{html.escape(v)}</span></li>" if v
        else f"<li>{html.escape(text)}</li>"
        for text, v in answer.lines
    ]  # fmt: skip
    parts.append(f"<div class='answer' id='answer'><h2>Answer</h2><ul>{''.join(items)}</ul></div>")
    if answer_png is not None:
        parts.append(_img(answer_png, "the answer: effect of each factor on the primary metric(s), 95 % CI"))
    if answer.few_seeds:
        parts.append(f"<p class='note'>{_code_spans(answer.few_seeds)}</p>")
    if answer.sequential:
        lis = "".join(f"<li>{html.escape(x.strip())}</li>" for x in answer.sequential[1:])
        parts.append(f"<div class='note'><p>{html.escape(answer.sequential[0])}</p><ul>{lis}</ul></div>")
    if attention:
        lis = "".join(f"<li>{html.escape(a)}</li>" for a in attention)
        parts.append(f"<div class='attention'><h2>Attention</h2><ul>{lis}</ul></div>")
    if folded:
        parts.append(f"<p class='note'>{html.escape(_folded_text(folded))}</p>")
    parts.append("<h2>Contents</h2><ul>")
    parts += [
        f"<li><a href='#{slug(r.metric)}'>{html.escape(r.metric)}</a>{' (primary)' if r.primary else ''}</li>"
        for r in results
    ]
    parts.append("<li><a href='#method'>Method</a></li><li><a href='#runs'>Runs</a></li></ul>")

    for res in results:
        parts.append(f"<h2 id='{slug(res.metric)}'>{html.escape(res.metric)}{' (primary)' if res.primary else ''}</h2>")
        classes = [
            "bad" if row["provisional"] else ("warn" if row["notes"] else "") for _, row in res.summary.iterrows()
        ]
        parts.append(_table(_CONFIG_HEADER, _config_rows(res, labels), classes))
        if len(res.effects):
            rows = _effect_rows(res)
            parts.append("<h3>Effects, other factors held fixed</h3>")
            parts.append(_table(_EFFECT_HEADER, rows, ["warn" if r[-1] != NO_VALUE else "" for r in rows]))
        if len(res.ablation):
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
        res = _MetricResult(
            metric,
            metric in primary,
            summarize(data, metric, n_resamples=n_resamples, seed=seed),
            # Averaged over the other factors says nothing new with one factor (it is the per-level table).
            ablation_table(data, metric, n_resamples=n_resamples, seed=seed)
            if len(data.factors) >= 2
            else pd.DataFrame(),
            paired_effects(data, metric, n_resamples=n_resamples, seed=seed, baselines=base),
        )
        name = slug(metric)
        curves = learning_curves(data, metric, n_resamples=n_resamples, seed=seed)
        per_run = final_per_run(data, metric)
        res.figures = [
            # Curves first: how the runs got there, then where they ended.
            ("learning curves", plot_learning_curves(curves, metric, out / f"{name}_curves.png", colors, labels)),
            ("final performance",
             plot_final_performance(per_run, res.summary, metric, out / f"{name}_final.png", colors, labels)),
        ]  # fmt: skip
        if res.primary:
            res.figures.append(
                ("performance profile: fraction of runs above each final value",
                 plot_performance_profile(per_run, metric, out / f"{name}_profile.png", colors, labels))
            )  # fmt: skip
        if len(res.effects):
            res.figures.append(
                ("effects, other factors held fixed",
                 plot_paired_effects(res.effects, metric, out / f"{name}_effects.png"))
            )  # fmt: skip
        if len(res.ablation):
            res.figures.append(
                ("averaged over the other factors", plot_ablation(res.ablation, metric, out / f"{name}_ablation.png"))
            )
        results.append(res)

    answered = {r.metric: r.effects for r in results if r.primary and len(r.effects)}
    answer_png = plot_answer(answered, out / "answer.png") if answered else None
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    for attr, file in (("summary", "summary.csv"), ("ablation", "ablation.csv"), ("effects", "effects.csv")):
        frames = [getattr(r, attr) for r in results if len(getattr(r, attr))]
        (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(out / file, index=False)
    data.runs.to_csv(out / "runs.csv", index=False)
    methods = methods_text(n_resamples, seed)
    attention = _attention(data) + [f"metric {m} requested but not logged by any run" for m in missing]
    attention += [f"env={e}: no reference scores, so its runs are left out of {NORMALISED}" for e in no_reference]
    answer = _answer(data, results, labels)
    md = _markdown(data, results, generated, methods, folded, attention, answer, labels)
    (out / "summary.md").write_text(md, "utf-8")
    report = out / "report.html"
    page = _html(data, results, generated, attention, methods, folded, answer_png, answer, labels)
    report.write_text(page, encoding="utf-8")
    return report
