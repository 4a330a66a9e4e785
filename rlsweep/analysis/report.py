"""The sweep report: ``report.html`` (self-contained), ``summary.md``, ``summary.csv`` and the PNGs.

:func:`write_report` is what ``rlsweep report <sweep_dir>`` calls. The HTML embeds every figure as a base64
``data:`` URI so the single file can be mailed; the PNG files are kept next to it for slides. The report puts
what could mislead first: unfinished / failed runs, configurations with missing seeds and read problems are
listed at the top and repeated in the tables' notes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rlsweep.analysis.load import COMPLETED, SweepData, load_sweep
from rlsweep.analysis.plots import (
    config_colors,
    plot_ablation,
    plot_final_performance,
    plot_learning_curves,
    plot_paired_effects,
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

DEFAULT_METRICS = (
    "episode/score",
    "episode/return",
    "explore/rooms",
    "explore/cells",
    "motivation/int_reward_mean",
    "perf/sps",
)

METHODS = """\
Final performance of a run = mean of the metric over the last {pct:.0f} % of its logged
agent steps (lines with global_step >= {keep:g} x the run's last logged step; for sparse
episode metrics with no value in that window, the run's latest value). Per configuration: mean and
interquartile mean (IQM: mean of the middle 50 %, computed as scipy.stats.trim_mean(x, 0.25), the rliable
convention; equals the mean for fewer than 4 seeds) over seeds, with 95 % percentile bootstrap CIs
({n_resamples} resamples over seeds, numpy Generator seed {seed}). With 1 seed no CI is given.
Statistics use completed runs only; a configuration with no completed run uses its unfinished runs and is
marked provisional. Learning curves: every run linearly interpolated onto a common regular grid of 200 steps
within its own logged range (no extrapolation), mean over seeds, 95 % bootstrap band across seeds where at
least 2 seeds cover the step. Ablation: for each factor level, the mean over configurations at that level of
each configuration's mean final performance (each configuration weighs the same), CI from a bootstrap
stratified by configuration. Factor levels averaged over other factors are only comparable when the design
is balanced; check n per point. Held fixed: for each level against the first, the difference of
configuration means within every combination of the other factors where both were run, averaged over those
matched pairs (same stratified bootstrap); unmatched combinations are listed, not used."""


def methods_text(n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> str:
    """The report's "Method" paragraph for the settings actually used."""
    return METHODS.format(pct=100 * FINAL_FRACTION, keep=1 - FINAL_FRACTION, n_resamples=n_resamples, seed=seed)


@dataclass
class _MetricResult:
    metric: str
    summary: pd.DataFrame
    ablation: pd.DataFrame
    effects: pd.DataFrame  # matched pairs, other factors held fixed
    figures: list[tuple[str, Path]]  # (caption, png path)


def _num(x: object) -> str:
    """Compact number for tables; NaN/None as an en dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _ci_text(low: float, high: float, n: int) -> str:
    return Interval(float("nan"), low, high, n).format()


def _seeds_text(row: pd.Series) -> str:
    return f"{row['n_completed']}/{row['n_seeds_expected']}"


def _markdown(data: SweepData, results: list[_MetricResult], generated: str, methods: str) -> str:
    lines = [f"# Sweep report: {', '.join(data.sweep_names) or data.sweep_dir.name}", ""]
    lines += [f"`{data.sweep_dir}` — generated {generated}.", ""]
    lines += [
        f"{len(data.runs)} runs, {len(data.configs)} configurations, seeds {data.seeds}; "
        f"{int((data.runs['status'] == COMPLETED).sum())} completed.",
        "",
    ]
    attention = _attention(data)
    if attention:
        lines += ["## Attention", "", *[f"- {a}" for a in attention], ""]
    lines += ["## Method", "", methods.replace("\n", " "), ""]
    for res in results:
        lines += [f"## {res.metric}", ""]
        lines += [
            "| configuration | seeds (completed/total) | mean | mean 95 % CI | IQM | IQM 95 % CI | notes |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, row in res.summary.iterrows():
            cells = [
                str(row["name"]),
                _seeds_text(row),
                _num(row["mean"]),
                _ci_text(row["mean_ci_low"], row["mean_ci_high"], row["n_used"]),
                _num(row["iqm"]),
                _ci_text(row["iqm_ci_low"], row["iqm_ci_high"], row["n_used"]),
                str(row["notes"]) or "",
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
        if len(res.ablation):
            lines += ["| factor | level | mean | 95 % CI | Δ vs first level | runs | configs |"]
            lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
            for _, row in res.ablation.iterrows():
                lines.append(
                    f"| {row['factor']} | {row['level']} | {_num(row['mean'])} | "
                    f"{_ci_text(row['ci_low'], row['ci_high'], row['n_runs'])} | {_num(row['delta'])} | "
                    f"{row['n_runs']} | {row['n_configs']} |"
                )
            lines.append("")
        if len(res.effects):
            lines += ["Effects with the other factors held fixed (matched pairs):", ""]
            lines += ["| factor | level − baseline | Δ | 95 % CI | pairs | runs | held fixed | unmatched |"]
            lines += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for _, row in res.effects.iterrows():
                lines.append(
                    f"| {row['factor']} | {row['level']} − {row['baseline']} | {_num(row['delta'])} | "
                    f"{_ci_text(row['ci_low'], row['ci_high'], row['n_runs'])} | {row['n_pairs']} | "
                    f"{row['n_runs']} | {row['held_fixed']} | {row['unmatched'] or '–'} |"
                )
            lines.append("")
    return "\n".join(lines)


def _attention(data: SweepData) -> list[str]:
    """Everything that can make a comparison misleading, one line each."""
    out = []
    for row in data.runs[data.runs["flags"] != ""].itertuples(index=False):
        out.append(f"run {row.run_id}: {row.flags}")
    for row in data.configs[data.configs["flags"] != ""].itertuples(index=False):
        out.append(f"configuration {row.name}: {row.flags}")
    out.extend(data.issues)
    if "env" in data.factors:
        # Raw scores of different games live on different scales; a marginal mean over envs mixes them.
        out.append("factor env varies: ablations of the other factors average raw values across environments")
    return out


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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr.warn{background:#fff4d6} tr.bad{background:#fde0e0}
.attention{border-left:4px solid #d98c00;background:#fff8e6;padding:.5em 1em}
.method{font-size:.9em;color:#444} img{max-width:100%} figure{margin:1em 0}
figcaption{font-size:.8em;color:#666}
"""


def _html(
    data: SweepData, results: list[_MetricResult], generated: str, missing_metrics: list[str], methods: str
) -> str:
    title = f"Sweep report: {', '.join(data.sweep_names) or data.sweep_dir.name}"
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><code>{html.escape(str(data.sweep_dir))}</code> — generated {html.escape(generated)}. "
        f"{len(data.runs)} runs, {len(data.configs)} configurations, seeds {html.escape(str(data.seeds))}, "
        f"{int((data.runs['status'] == COMPLETED).sum())} completed; "
        f"factors: {html.escape(', '.join(data.factors) or 'none')}.</p>",
    ]
    attention = _attention(data) + [f"metric {m} requested but not logged by any run" for m in missing_metrics]
    if attention:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in attention)
        parts.append(f"<div class='attention'><h2>Attention</h2><ul>{items}</ul></div>")
    parts.append(f"<h2>Method</h2><p class='method'>{html.escape(methods)}</p>")
    parts.append("<h2>Contents</h2><ul>")
    parts += [f"<li><a href='#{slug(r.metric)}'>{html.escape(r.metric)}</a></li>" for r in results]
    parts.append("<li><a href='#runs'>Runs</a></li></ul>")

    for res in results:
        parts.append(f"<h2 id='{slug(res.metric)}'>{html.escape(res.metric)}</h2>")
        rows, classes = [], []
        for _, row in res.summary.iterrows():
            rows.append(
                [
                    str(row["name"]),
                    _seeds_text(row),
                    _num(row["mean"]),
                    _ci_text(row["mean_ci_low"], row["mean_ci_high"], row["n_used"]),
                    _num(row["iqm"]),
                    _ci_text(row["iqm_ci_low"], row["iqm_ci_high"], row["n_used"]),
                    str(row["notes"]),
                ]
            )
            classes.append("bad" if row["provisional"] else ("warn" if row["notes"] else ""))
        header = [
            "configuration",
            "seeds (completed/total)",
            "mean",
            "mean 95 % CI",
            "IQM",
            "IQM 95 % CI",
            "notes",
        ]
        parts.append(_table(header, rows, classes))
        if len(res.ablation):
            abl_rows = [
                [
                    str(r["factor"]),
                    str(r["level"]),
                    _num(r["mean"]),
                    _ci_text(r["ci_low"], r["ci_high"], r["n_runs"]),
                    _num(r["delta"]),
                    str(r["n_runs"]),
                    str(r["n_configs"]),
                ]
                for _, r in res.ablation.iterrows()
            ]
            parts.append(
                "<h3>Ablation: each factor averaged over the others</h3>"
                + _table(["factor", "level", "mean", "95 % CI", "Δ vs first level", "runs", "configs"], abl_rows)
            )
        if len(res.effects):
            eff_rows = [
                [
                    str(r["factor"]),
                    f"{r['level']} − {r['baseline']}",
                    _num(r["delta"]),
                    _ci_text(r["ci_low"], r["ci_high"], r["n_runs"]),
                    str(r["n_pairs"]),
                    str(r["n_runs"]),
                    str(r["held_fixed"]),
                    str(r["unmatched"]) or "–",
                ]
                for _, r in res.effects.iterrows()
            ]
            parts.append(
                "<h3>Ablation: each factor with the others held fixed (matched pairs)</h3>"
                + _table(
                    ["factor", "level − baseline", "Δ", "95 % CI", "pairs", "runs", "held fixed", "unmatched"],
                    eff_rows,
                    ["warn" if row[7] != "–" else "" for row in eff_rows],
                )
            )
        parts += [_img(path, caption) for caption, path in res.figures]

    parts.append("<h2 id='runs'>Runs</h2>")
    choice_cols = data.choice_columns
    run_rows, run_classes = [], []
    for _, r in data.runs.iterrows():
        run_rows.append(
            [
                str(r["run_id"]),
                str(r["name"]),
                str(r["seed"]),
                str(r["status"]),
                _num(100 * r["progress"]) + " %",
                str(r["n_logged"]),
                *[str(r[c]) for c in choice_cols],
                str(r["wandb_id"] or ""),
                str(r["flags"]),
            ]
        )
        run_classes.append("bad" if r["status"] == "failed" else ("warn" if r["unfinished"] or r["flags"] else ""))
    parts.append(
        _table(
            ["run", "configuration", "seed", "status", "progress", "lines", *choice_cols, "W&B id", "flags"],
            run_rows,
            run_classes,
        )
    )
    parts.append("<h2>Configurations</h2>")
    cfg_rows = [
        [
            str(r["name"]),
            f"{r['n_completed']}/{r['n_runs']}",
            ", ".join(map(str, r["seeds"])),
            ", ".join(map(str, r["missing_seeds"])) or "–",
            str(r["flags"]),
        ]
        for _, r in data.configs.iterrows()
    ]
    parts.append(
        _table(
            ["configuration", "completed/runs", "seeds", "missing seeds", "flags"],
            cfg_rows,
            ["warn" if row[4] else "" for row in cfg_rows],
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def chosen_metrics(data: SweepData, metrics: Sequence[str] | None = None) -> list[str]:
    """The requested metrics some run logged; default: those of :data:`DEFAULT_METRICS` that were logged."""
    logged = {m for m in data.metric_names if data.metrics[m].notna().any()}
    wanted = list(metrics) if metrics is not None else list(DEFAULT_METRICS)
    return [m for m in wanted if m in logged]


def write_report(
    sweep_dir: Path | str,
    out_dir: Path | str | None = None,
    metrics: Sequence[str] | None = None,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Path:
    """Write the report of ``sweep_dir`` into ``out_dir`` (default ``sweep_dir / "report"``).

    Args:
        metrics: metric names to report; default: those of :data:`DEFAULT_METRICS` that some run logged.
            Requested metrics no run logged are listed under "Attention".
        n_resamples, seed: bootstrap settings (the defaults make reports reproducible).

    Returns:
        the path of ``report.html``. Next to it: ``summary.md``, ``summary.csv`` (one row per metric x
        configuration), ``ablation.csv`` (averaged over other factors), ``effects.csv`` (held fixed),
        ``runs.csv`` and the PNG figures.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    data = load_sweep(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)

    chosen = chosen_metrics(data, metrics)
    missing = [m for m in (metrics or []) if m not in chosen]

    colors = config_colors(list(data.configs["name"]))
    results: list[_MetricResult] = []
    for metric in chosen:
        summary = summarize(data, metric, n_resamples=n_resamples, seed=seed)
        ablation = ablation_table(data, metric, n_resamples=n_resamples, seed=seed)
        effects = paired_effects(data, metric, n_resamples=n_resamples, seed=seed)
        per_run = final_per_run(data, metric)
        curves = learning_curves(data, metric, n_resamples=n_resamples, seed=seed)
        base = slug(metric)
        figures = [
            # Curves first: how the runs got there, then where they ended.
            ("learning curves", plot_learning_curves(curves, metric, out / f"{base}_curves.png", colors)),
            (
                "final performance",
                plot_final_performance(per_run, summary, metric, out / f"{base}_final.png", colors),
            ),
        ]
        if len(ablation):
            figures.append(
                ("ablation by factor (averaged over the other factors)",
                 plot_ablation(ablation, metric, out / f"{base}_ablation.png"))
            )  # fmt: skip
        if len(effects):
            figures.append(
                ("factor effects (other factors held fixed)",
                 plot_paired_effects(effects, metric, out / f"{base}_effects.png"))
            )  # fmt: skip
        results.append(_MetricResult(metric, summary, ablation, effects, figures))

    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary_all = pd.concat([r.summary for r in results], ignore_index=True) if results else pd.DataFrame()
    summary_all.to_csv(out / "summary.csv", index=False)
    ablation_all = pd.concat([r.ablation for r in results], ignore_index=True) if results else pd.DataFrame()
    ablation_all.to_csv(out / "ablation.csv", index=False)
    effects_all = pd.concat([r.effects for r in results], ignore_index=True) if results else pd.DataFrame()
    effects_all.to_csv(out / "effects.csv", index=False)
    data.runs.to_csv(out / "runs.csv", index=False)
    methods = methods_text(n_resamples, seed)
    md = _markdown(data, results, generated, methods)
    if missing:
        md += "\n" + "\n".join(f"- metric {m} requested but not logged by any run" for m in missing) + "\n"
    (out / "summary.md").write_text(md, encoding="utf-8")
    report = out / "report.html"
    report.write_text(_html(data, results, generated, missing, methods), encoding="utf-8")
    return report
