"""PNG figures for a sweep report: the answer, learning curves, final performance, profiles, factor effects.

Figures are drawn on :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, never through
``pyplot``: no global backend switch, no figure registry to leak, works headless on a cluster node. The
functions only draw; the numbers come from :mod:`rlsweep.analysis.stats`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rlsweep.analysis.stats import Curve, performance_profile

DPI = 110
_PALETTE = "tab10"
_PALETTE_LARGE = "tab20"


def slug(metric: str) -> str:
    """File-name-safe form of a metric name ("episode/score" -> "episode_score")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("_") or "metric"


def config_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A stable colour per configuration, shared by every figure of the report."""
    from matplotlib import colormaps

    cmap = colormaps[_PALETTE if len(names) <= 10 else _PALETTE_LARGE]
    n = cmap.N
    return {name: cmap(i % n) for i, name in enumerate(sorted(names))}


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def plot_learning_curves(
    curves: dict[str, Curve],
    metric: str,
    path: Path,
    colors: dict[str, tuple[float, float, float, float]] | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """Mean over seeds per configuration with the 95 % bootstrap band (no band where < 2 seeds).

    The line is solid where all of a configuration's seeds cover the step and dotted where only some do
    (unfinished runs), so a jump caused by seeds dropping out is not read as learning.
    """
    colors = colors or config_colors(list(curves))
    fig = _new_figure(8.0, 4.8)
    ax = fig.add_subplot()
    for name, c in curves.items():
        color = colors.get(name)
        # Dotted everywhere underneath, solid on top where every seed contributes: no gaps at the joins.
        full = np.where(c.count >= c.n_runs, c.mean, np.nan)
        ax.plot(c.steps, c.mean, color=color, lw=1.2, ls=":")
        ax.plot(c.steps, full, color=color, lw=1.8, label=f"{(labels or {}).get(name, name)} (n={c.n_runs})")
        if np.isfinite(c.low).any():
            ax.fill_between(c.steps, c.low, c.high, color=color, alpha=0.2, lw=0)
    ax.set_xlabel("agent steps (global_step)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean over seeds, 95 % bootstrap band (dotted: not all seeds)")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_final_performance(
    per_run: pd.DataFrame,
    summary: pd.DataFrame,
    metric: str,
    path: Path,
    colors: dict[str, tuple[float, float, float, float]] | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """Per configuration: every run's final value (hollow = not counted), IQM with 95 % CI, and the mean.

    Individual runs are drawn because with a handful of seeds the raw values say more than any interval.
    """
    names = list(summary["name"])
    colors = colors or config_colors(names)
    fig = _new_figure(8.0, max(2.5, 0.55 * len(names) + 1.5))
    ax = fig.add_subplot()
    provisional = {n: bool(p) for n, p in zip(summary["name"], summary["provisional"], strict=True)}
    for y, row in enumerate(summary.itertuples(index=False)):
        color = colors.get(row.name)
        runs = per_run[per_run["name"] == row.name]
        jitter = np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else np.zeros(len(runs))
        for j, run in zip(jitter, runs.itertuples(index=False), strict=True):
            used = provisional[row.name] or run.status == "completed"
            ax.scatter(
                run.final,
                y + j,
                s=22,
                facecolors=color if used else "none",
                edgecolors=color,
                alpha=0.7,
                zorder=2,
            )
        if np.isfinite(row.iqm_ci_low):
            ax.errorbar(
                row.iqm,
                y,
                xerr=np.array([[row.iqm - row.iqm_ci_low], [row.iqm_ci_high - row.iqm]]),
                fmt="D",
                color="black",
                ms=6,
                capsize=4,
                zorder=3,
            )
        else:
            ax.plot(row.iqm, y, "D", color="black", ms=6, zorder=3)
        ax.plot(row.mean, y, "|", color="crimson", ms=14, mew=2, zorder=3)
        label = f"{row.n_used} run(s)" + (" (1 seed: no CI)" if row.n_used == 1 else "")
        if row.provisional:
            label += " provisional"
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="x-small")  # fmt: skip
    ax.set_yticks(range(len(names)), labels=[(labels or {}).get(n, n) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel(f"final {metric} (mean over last 10 % of steps)")
    ax.set_title("IQM ◆ with 95 % CI, mean | (red), runs ● (hollow: unfinished, excluded)", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    if not names:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_ablation(ablation: pd.DataFrame, metric: str, path: Path) -> Path:
    """One panel per factor: final performance per level, averaged over the other factors, with CI and n."""
    factors = list(dict.fromkeys(ablation["factor"]))
    cols = min(3, max(1, len(factors)))
    nrows = max(1, -(-len(factors) // cols))
    # At least 7.5 in wide: with a single factor the suptitle would otherwise be clipped.
    fig = _new_figure(max(7.5, 4.0 * cols), 3.4 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat[len(factors) :]:
        ax.set_visible(False)
    for ax, factor in zip(axes.flat, factors, strict=False):
        sub = ablation[ablation["factor"] == factor]
        x = np.arange(len(sub))
        y = sub["mean"].to_numpy(dtype=float)
        lo = sub["ci_low"].to_numpy(dtype=float)
        hi = sub["ci_high"].to_numpy(dtype=float)
        has_ci = np.isfinite(lo) & np.isfinite(hi)
        if has_ci.any():
            # yerr as one (2, n) array: matplotlib mis-handles a list of length-1 arrays.
            yerr = np.vstack([y[has_ci] - lo[has_ci], hi[has_ci] - y[has_ci]])
            ax.errorbar(x[has_ci], y[has_ci], yerr=yerr, fmt="o", capsize=5, color="tab:blue")
        ax.plot(x[~has_ci], y[~has_ci], "o", mfc="none", color="tab:blue")
        ax.plot(x, y, color="tab:blue", alpha=0.3)
        for xi, yi, row in zip(x, y, sub.itertuples(index=False), strict=True):
            ax.annotate(f"n={row.n_runs} runs\n{row.n_configs} cfg", (xi, yi), xytext=(6, 0),
                        textcoords="offset points", fontsize="x-small", va="center")  # fmt: skip
        ax.set_xticks(x, labels=[str(v) for v in sub["level"]])
        ax.set_xlim(-0.5, len(sub) - 0.3)
        ax.set_title(factor)
        ax.set_ylabel(f"final {metric}", fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{metric}: per factor level, averaged over the other factors (95 % CI)", fontsize="medium")
    if not factors:
        axes[0, 0].set_visible(True)
        axes[0, 0].text(0.5, 0.5, "no factor varies", ha="center", va="center")
    return _save(fig, path)


_VERDICT_COLOURS = {"higher": "tab:green", "lower": "tab:red"}


def _effect_labels(effects: pd.DataFrame) -> list[str]:
    return [f"{r.factor}={r.level} − {r.factor}={r.baseline}" for r in effects.itertuples(index=False)]


def _draw_effects(ax: Axes, effects: pd.DataFrame, metric: str) -> None:
    """Forest plot on ``ax``: Δ vs the baseline level with its 95 % CI, P(improvement) written at the right."""
    labels = _effect_labels(effects)
    y = np.arange(len(labels))
    d = effects["delta"].to_numpy(dtype=float)
    lo = effects["ci_low"].to_numpy(dtype=float)
    hi = effects["ci_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    # Colour says what the test decided (the report's verdict column), never what the interval alone suggests: an
    # interval over few seeds excludes zero far more often than its level. No verdict (a metric outside the answer):
    # grey.
    verdicts = effects["verdict"] if "verdict" in effects else pd.Series([""] * len(effects))
    colour = np.array([_VERDICT_COLOURS.get(str(v), "tab:grey") for v in verdicts])
    for i in np.flatnonzero(has_ci):
        ax.errorbar(d[i], y[i], xerr=[[d[i] - lo[i]], [hi[i] - d[i]]], fmt="o", capsize=4, color=colour[i], ms=7)
    ax.plot(d[~has_ci], y[~has_ci], "o", mfc="none", color="tab:grey")
    ax.axvline(0.0, color="black", lw=1, ls="--")
    ax.set_yticks(y, labels=labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.5, -0.5)
    for yi, row in zip(y, effects.itertuples(index=False), strict=True):
        p = row.p_improve
        text = f"P(impr.) {p:.2f}" if np.isfinite(p) else "P(impr.) –"
        ax.annotate(f"{text}  n={row.n_level} vs {row.n_base}", (1.0, yi), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize="small")  # fmt: skip
    ax.set_xlabel(f"Δ final {metric} vs the baseline (other factors held fixed)")
    ax.grid(axis="x", alpha=0.3)
    if not labels:
        ax.text(0.5, 0.5, "no factor with matched pairs", ha="center", va="center", transform=ax.transAxes)


def plot_paired_effects(effects: pd.DataFrame, metric: str, path: Path) -> Path:
    """Forest plot of matched-pair effects (other factors held fixed): Δ vs the baseline level, 95 % CI.

    The zero line is the baseline; an interval that crosses it is no evidence of an effect at this many
    seeds. Hollow markers: one seed per side, so no interval.
    """
    fig = _new_figure(9.0, max(2.2, 0.5 * len(effects) + 1.4))
    ax = fig.add_subplot()
    _draw_effects(ax, effects, metric)
    ax.set_title(f"{metric}: effect of each factor, 95 % bootstrap CI (verdict: green higher, red lower)",
                 fontsize="medium")  # fmt: skip
    return _save(fig, path)


def plot_answer(effects: dict[str, pd.DataFrame], path: Path) -> Path:
    """The report's first figure: one forest-plot panel per primary metric, stacked."""
    heights = [max(1.0, 0.5 * len(e)) + 1.0 for e in effects.values()]
    fig = _new_figure(9.0, sum(heights) + 0.5)
    axes = fig.subplots(len(effects), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (metric, eff) in zip(axes, effects.items(), strict=True):
        _draw_effects(ax, eff, metric)
        ax.set_title(metric, fontsize="medium", loc="left")
    fig.suptitle("What each factor did (95 % bootstrap CI; the test's verdict: green higher, red lower, grey not "
                 "decided)", fontsize="medium")  # fmt: skip
    return _save(fig, path)


def plot_performance_profile(
    per_run: pd.DataFrame,
    metric: str,
    path: Path,
    colors: dict[str, tuple[float, float, float, float]] | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """Run-score performance profile per configuration (rliable): fraction of runs with final value > τ.

    Completed runs only, as in the statistics. A curve that lies above another everywhere dominates it at
    every threshold, which a single mean cannot show.
    """
    done = per_run[(per_run["status"] == "completed") & np.isfinite(per_run["final"].to_numpy(dtype=float))]
    names = sorted(done["name"].unique())
    colors = colors or config_colors(names)
    fig = _new_figure(8.0, 4.4)
    ax = fig.add_subplot()
    values = done["final"].to_numpy(dtype=float)
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        tau = np.linspace(lo - pad, hi + pad, 400)
        for name in names:
            v = done.loc[done["name"] == name, "final"].to_numpy(dtype=float)
            ax.step(tau, performance_profile(v, tau), where="post", color=colors.get(name), lw=1.8,
                    label=f"{(labels or {}).get(name, name)} (n={v.size})")  # fmt: skip
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, "no completed run", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"threshold τ on final {metric}")
    ax.set_ylabel("fraction of runs > τ")
    ax.set_title(f"{metric}: performance profile (completed runs)", fontsize="medium")
    ax.grid(alpha=0.3)
    return _save(fig, path)
