"""Aggregation across seeds: final performance per run, mean / IQM with bootstrap CIs, curves, factor effects.

Definitions (the report's "Methods" section repeats them):

* **Final performance** of a run for a metric = the mean of that metric over the last 10 % of the run's logged
  agent steps, i.e. over lines with ``global_step >= (1 - 0.1) * last_step`` where ``last_step`` is the run's
  last logged ``global_step``. Sparse metrics (episode metrics are only logged when an episode ends) can have
  no value in that window; the run's most recent value of the metric is used then. A run that never logged
  the metric has no final performance (NaN) and is not counted.
* **IQM** = interquartile mean as in Agarwal et al. (2021), computed exactly like ``scipy.stats.trim_mean(x,
  0.25)`` (which rliable uses): sort, cut ``int(0.25 * n)`` values from each end, average the rest. For n < 4
  nothing is cut, so the IQM equals the mean.
* **95 % CI** = percentile bootstrap: resample seeds with replacement (stratified: within each configuration
  when several are pooled), recompute the statistic, take the 2.5 / 97.5 percentiles. 2000 resamples, numpy
  ``Generator`` seeded so a report is reproducible. With a single seed there is no interval (``degenerate``).
* Statistics use **completed** runs only; unfinished / failed runs would bias the final performance towards
  early training. A configuration with no completed run falls back to its unfinished runs and is marked
  ``provisional``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.stats

from rlsweep.analysis.load import COMPLETED, SweepData
from rlsweep.analysis.verdicts import permutation_test, pooled_sd, welch_interval

FINAL_FRACTION = 0.1
N_RESAMPLES = 2000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0

FloatArray = npt.NDArray[np.float64]
StatName = Literal["mean", "iqm"]


def iqm(x: npt.ArrayLike, axis: int = -1) -> FloatArray | float:
    """Interquartile mean: ``scipy.stats.trim_mean(x, 0.25)``, as rliable's ``aggregate_iqm`` computes it."""
    a = np.asarray(x, dtype=float)
    if a.shape[axis] == 0:
        raise ValueError("IQM of an empty array")
    result = scipy.stats.trim_mean(a, 0.25, axis=axis)
    return float(result) if np.ndim(result) == 0 else np.asarray(result)


def _stat_fn(statistic: StatName | Callable[[FloatArray], FloatArray]) -> Callable[[FloatArray], FloatArray]:
    """Resolve a statistic name into a function reducing the last axis."""
    if statistic == "mean":
        return lambda a: np.asarray(a.mean(axis=-1))
    if statistic == "iqm":
        return lambda a: np.asarray(iqm(a, axis=-1))
    if callable(statistic):
        return statistic
    raise ValueError(f"unknown statistic {statistic!r}")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile-bootstrap interval.

    ``low`` / ``high`` are NaN when ``degenerate``: one seed carries no information about seed-to-seed
    variability, so no interval is reported rather than a zero-width one.
    """

    point: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def degenerate(self) -> bool:
        return self.n < 2

    def columns(self, key: str) -> dict[str, float]:
        """The interval as a table's columns ``key, key_ci_low, key_ci_high`` (:func:`interval_columns`)."""
        return {key: self.point, f"{key}_ci_low": self.low, f"{key}_ci_high": self.high}

    def format(self, fmt: str = "{:.4g}") -> str:
        """``[low, high]``, or a statement why there is no interval."""
        if self.n == 0:
            return "no data"
        if self.degenerate or not (math.isfinite(self.low) and math.isfinite(self.high)):
            # One wording for every table: a CI needs two seeds of at least one configuration behind it.
            return "n/a (1 seed)"
        return f"[{fmt.format(self.low)}, {fmt.format(self.high)}]"


def _bootstrap_bounds(
    strata: Sequence[FloatArray],
    statistic: Callable[[list[FloatArray]], FloatArray],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """Percentile-bootstrap bounds of ``statistic`` with every stratum resampled on its own.

    ``scipy.stats.bootstrap`` does the resampling: given several samples (``paired=False``) it resamples each
    independently, which is exactly the stratified bootstrap (each configuration keeps its seed count). scipy
    needs two values per sample, so a stratum of one value enters as a constant (it has no seed variability
    to resample) and empty strata stay in place for ``statistic`` to skip. NaN bounds when no stratum has
    two values.
    """
    varying = [a for a in strata if a.size >= 2]
    if not varying:
        return float("nan"), float("nan")

    def batched(*samples: FloatArray, axis: int = -1) -> FloatArray:
        batch = samples[0].shape[:-1]
        it = iter(samples)
        full = [next(it) if a.size >= 2 else (np.broadcast_to(a, (*batch, 1)) if a.size else a) for a in strata]
        return np.asarray(statistic(full), dtype=float)

    res = scipy.stats.bootstrap(
        varying,
        batched,
        n_resamples=n_resamples,
        vectorized=True,
        axis=-1,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def stratified_bootstrap_ci(
    strata: Sequence[npt.ArrayLike],
    statistic: Callable[[list[FloatArray]], FloatArray],
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Percentile bootstrap where each stratum (a configuration's seeds) is resampled on its own.

    ``statistic`` receives a list with one array per stratum, each of shape ``(R, n_i)`` (``R`` = resamples) or
    ``(n_i,)`` (the point estimate), and reduces the last axis. Resampling within strata keeps each
    configuration's seed count fixed, as in rliable's stratified bootstrap over tasks. NaNs are dropped.

    The interval is degenerate (NaN bounds) when no stratum has two values: there is then no seed variability
    to resample.
    """
    arrays = [np.asarray(s, dtype=float) for s in strata]
    arrays = [a[~np.isnan(a)] for a in arrays]
    arrays = [a for a in arrays if a.size]
    n = sum(a.size for a in arrays)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, confidence)
    point = float(np.asarray(statistic(arrays)))
    low, high = _bootstrap_bounds(arrays, statistic, n_resamples, confidence, seed)
    return Interval(point, low, high, n, confidence)


def bootstrap_ci(
    values: npt.ArrayLike,
    statistic: StatName | Callable[[FloatArray], FloatArray] = "mean",
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Percentile bootstrap CI of ``statistic`` ("mean", "iqm" or a last-axis reducer) over one sample.

    NaNs are dropped first. Reproducible: the same ``seed`` gives the same interval.
    """
    fn = _stat_fn(statistic)
    return stratified_bootstrap_ci(
        [values], lambda s: fn(s[0]), n_resamples=n_resamples, confidence=confidence, seed=seed
    )


def mean_of_stratum_means(strata: list[FloatArray]) -> FloatArray:
    """Average of per-stratum means: every configuration weighs the same, whatever its seed count."""
    return np.mean(np.stack([s.mean(axis=-1) for s in strata], axis=-1), axis=-1)


def final_performance(
    steps: npt.ArrayLike,
    values: npt.ArrayLike,
    fraction: float = FINAL_FRACTION,
    last_step: float | None = None,
) -> float:
    """Mean of ``values`` over ``steps >= (1 - fraction) * last_step`` (see module docstring).

    ``last_step`` defaults to the largest step given; pass the run's last logged step when ``steps`` only
    holds the lines where this metric was present. Falls back to the latest value when the window is empty,
    NaN when there is no value at all.
    """
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = ~np.isnan(v)
    s, v = s[keep], v[keep]
    if v.size == 0:
        return float("nan")
    end = float(s.max()) if last_step is None else float(last_step)
    window = s >= (1.0 - fraction) * end
    if not window.any():
        return float(v[np.argmax(s)])
    return float(v[window].mean())


def final_per_run(data: SweepData, metric: str, fraction: float = FINAL_FRACTION) -> pd.DataFrame:
    """One row per run: identity, choices, ``status``, ``progress``, ``final`` (NaN if never logged)."""
    finals: dict[str, float] = {}
    if metric in data.metrics:
        for run_id, grp in data.metrics.groupby("run_id", sort=False):
            last = float(grp["global_step"].max())
            finals[str(run_id)] = final_performance(grp["global_step"], grp[metric], fraction, last_step=last)
    cols = ["run_id", "name", "seed", "status", "progress", "unfinished", *data.choice_columns]
    out = data.runs[cols].copy()
    out["final"] = [finals.get(r, float("nan")) for r in out["run_id"]]
    return out


def _used_runs(grp: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Runs that enter a configuration's statistics, and whether that is a provisional fallback."""
    done = grp[grp["status"] == COMPLETED]
    if len(done):
        return done, False
    return grp, True


def summarize(
    data: SweepData,
    metric: str,
    fraction: float = FINAL_FRACTION,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    aggregates: Mapping[str, Callable[[FloatArray], FloatArray]] | None = None,
) -> pd.DataFrame:
    """Per configuration: seeds, mean and IQM of final performance with 95 % bootstrap CIs, status notes.

    Each ``aggregates[key]`` (a reducer of the last axis, like :func:`iqm`) adds ``key``, ``key_ci_low`` and
    ``key_ci_high``, bootstrapped over the same seeds as the mean.
    """
    per_run = final_per_run(data, metric, fraction)
    total_seeds = len(data.seeds)
    rows = []
    for name, grp in per_run.groupby("name", sort=True):
        used, provisional = _used_runs(grp)
        vals = used["final"].to_numpy(dtype=float)
        mean_ci = bootstrap_ci(vals, "mean", n_resamples=n_resamples, seed=seed)
        iqm_ci = bootstrap_ci(vals, "iqm", n_resamples=n_resamples, seed=seed)
        config = data.configs.set_index("name").loc[name]
        notes = []
        if provisional:
            notes.append("provisional: no completed run, statistics from unfinished runs")
        for row in grp[grp["status"] != COMPLETED].itertuples(index=False):
            pct = f"{100 * row.progress:.0f} %" if row.progress == row.progress else "?"
            tail = "" if provisional else ", excluded"
            notes.append(f"seed {row.seed} {row.status} ({pct}{tail})")
        if config["missing_seeds"]:
            notes.append(f"missing seed(s) {', '.join(map(str, config['missing_seeds']))}")
        no_metric = used[np.isnan(used["final"].to_numpy(dtype=float))]
        if len(no_metric):
            notes.append(f"{len(no_metric)} run(s) never logged {metric}")
        out = {
            "metric": metric,
            "name": name,
            **{c: config[c] for c in data.choice_columns},
            "n_completed": int(config["n_completed"]),
            "n_runs": int(config["n_runs"]),
            "n_seeds_expected": total_seeds,
            "n_used": mean_ci.n,
            "provisional": provisional,
            "mean": mean_ci.point,
            "mean_ci_low": mean_ci.low,
            "mean_ci_high": mean_ci.high,
            "iqm": iqm_ci.point,
            "iqm_ci_low": iqm_ci.low,
            "iqm_ci_high": iqm_ci.high,
            "ci_degenerate": mean_ci.degenerate,
            "notes": "; ".join(notes),
        }
        for key, fn in (aggregates or {}).items():
            out.update(bootstrap_ci(vals, fn, n_resamples=n_resamples, seed=seed).columns(key))
        rows.append(out)
    return pd.DataFrame(rows)


def ablation_table(
    data: SweepData,
    metric: str,
    factors: Sequence[str] | None = None,
    fraction: float = FINAL_FRACTION,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """Marginal effect of each factor on final performance, averaged over the other factors.

    For each factor level: the mean over configurations at that level of each configuration's mean final
    performance (equal weight per configuration, so a configuration with more seeds does not dominate),
    with a bootstrap CI that resamples seeds within each configuration. ``delta`` is the level's value minus
    the first level's (levels sorted). ``n_runs`` / ``n_configs`` say how much data sits behind each point;
    an unbalanced design (levels with different configuration counts) is averaged over different sets of
    the other factors.
    """
    per_run = final_per_run(data, metric, fraction)
    used = pd.concat([_used_runs(g)[0] for _, g in per_run.groupby("name", sort=True)], ignore_index=True)
    rows = []
    for factor in data.factors if factors is None else factors:
        base: float | None = None
        for level, grp in used.groupby(factor, sort=True):
            strata = [g["final"].to_numpy(dtype=float) for _, g in grp.groupby("name", sort=True)]
            ci = stratified_bootstrap_ci(strata, mean_of_stratum_means, n_resamples=n_resamples, seed=seed)
            n_configs = sum(int(np.isfinite(s).any()) for s in strata)
            base = ci.point if base is None else base
            rows.append(
                {
                    "metric": metric,
                    "factor": factor,
                    "level": level,
                    "mean": ci.point,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "delta": ci.point - base,
                    "n_runs": ci.n,
                    "n_configs": n_configs,
                }
            )
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


ABLATION_COLUMNS = ["metric", "factor", "level", "mean", "ci_low", "ci_high", "delta", "n_runs", "n_configs"]


@dataclass(frozen=True)
class Curve:
    """A configuration's learning curve on the common grid: mean over seeds, bootstrap band, seed count."""

    steps: FloatArray
    mean: FloatArray
    low: FloatArray  # NaN where fewer than 2 seeds cover the step (no band there)
    high: FloatArray
    count: FloatArray  # seeds whose logged range covers the step
    n_runs: int


def step_grid(data: SweepData, metric: str, n_points: int = 200) -> FloatArray:
    """A regular grid spanning every run's logged range of ``metric`` (shared by all configurations)."""
    present = data.metrics.dropna(subset=[metric]) if metric in data.metrics else data.metrics.iloc[:0]
    if present.empty:
        return np.zeros(0)
    lo, hi = float(present["global_step"].min()), float(present["global_step"].max())
    return np.linspace(lo, hi, n_points) if hi > lo else np.array([lo])


def learning_curves(
    data: SweepData,
    metric: str,
    n_points: int = 200,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Curve]:
    """Per configuration: each run interpolated linearly onto the common grid, then averaged over seeds.

    A run contributes only inside its own logged range (no extrapolation), so an unfinished run simply stops
    contributing; ``count`` records how many seeds stand behind each grid point. All runs are used here,
    including unfinished ones: a curve shows what was trained so far.
    """
    grid = step_grid(data, metric, n_points)
    curves: dict[str, Curve] = {}
    if grid.size == 0:
        return curves
    present = data.metrics.dropna(subset=[metric])
    rng_seed = seed
    alpha = (1.0 - confidence) / 2.0
    for name, grp in present.groupby("name", sort=True):
        rows = []
        for _, run in grp.groupby("run_id", sort=True):
            s = run["global_step"].to_numpy(dtype=float)
            v = run[metric].to_numpy(dtype=float)
            rows.append(np.interp(grid, s, v, left=np.nan, right=np.nan))
        y = np.vstack(rows)
        count = np.isfinite(y).sum(axis=0).astype(float)
        with warnings.catch_warnings():
            # All-NaN columns (no seed covers that step) are expected and become NaN.
            warnings.simplefilter("ignore", category=RuntimeWarning)
            mean = np.nanmean(y, axis=0)
            low = np.full_like(mean, np.nan)
            high = np.full_like(mean, np.nan)
            if y.shape[0] >= 2:
                rng = np.random.default_rng(rng_seed)
                idx = rng.integers(0, y.shape[0], size=(n_resamples, y.shape[0]))
                boot = np.nanmean(y[idx], axis=1)  # (R, grid)
                lo_b, hi_b = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
                band = count >= 2
                low[band], high[band] = lo_b[band], hi_b[band]
        curves[str(name)] = Curve(grid, mean, low, high, count, n_runs=y.shape[0])
    return curves


def probability_of_improvement(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """P(X > Y) + ½ P(X = Y) for a random run X from ``x`` and Y from ``y`` (last axis; leading axes batch).

    This is the Mann-Whitney U statistic divided by n·m, rliable's probability of improvement for one task;
    scipy computes U (ties count one half), so nothing here re-implements the ranking.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with warnings.catch_warnings():
        # Only U is used; the p-value scipy computes beside it warns about ties and tiny samples.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        u = scipy.stats.mannwhitneyu(xa, ya, axis=-1, method="asymptotic").statistic
    return np.asarray(u, dtype=float) / (xa.shape[-1] * ya.shape[-1])


def paired_effects(
    data: SweepData,
    metric: str,
    factors: Sequence[str] | None = None,
    fraction: float = FINAL_FRACTION,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    baselines: Mapping[str, str] | None = None,
    two_sample: Mapping[str, TwoSample] | None = None,
) -> pd.DataFrame:
    """Effect of each factor with the **other factors held fixed**: matched-pair differences.

    For factor ``f`` with baseline level ``b`` (``baselines[f]``, else the first level sorted) and another
    level ``l``: a *context* is one combination of the other factors' values. In every context where both
    ``b`` and ``l`` were run, the difference (mean final performance at ``l``) - (mean at ``b``) is taken,
    each side being the mean over that context's configurations of their seed means; ``delta`` is the
    average over contexts. Unlike :func:`ablation_table` this never compares across different settings of the
    other factors, so an unbalanced grid cannot fake an effect. ``p_improve`` is the probability that a run at
    ``l`` ends above a run at ``b`` of the same context (:func:`probability_of_improvement`), averaged over
    contexts as rliable averages over tasks. ``level_mean`` and ``base_mean`` are the two sides' values so averaged,
    ``sd`` the seed-to-seed spread pooled over their configurations. ``p`` is the two-sided permutation test of
    ``delta`` within contexts (:func:`rlsweep.analysis.verdicts.permutation_test`; ``test`` names it, ``p_min`` is
    the smallest p these seed counts allow): the report's verdicts come from it, the CIs describe. Both CIs
    resample seeds within each configuration (stratified),
    ``n_pairs`` counts the contexts, ``n_level`` / ``n_base`` the runs on each side, and contexts lacking
    either level are listed in ``unmatched``. Each ``two_sample[key]`` (a statistic of the level's runs against the
    baseline's, like :func:`probability_of_improvement`) adds ``key``, ``key_ci_low`` and ``key_ci_high``: averaged
    over contexts and bootstrapped as ``p_improve`` is.

    The steps: the runs that count (:func:`_used_finals`), each factor's baseline (:func:`_baseline`), the matched
    contexts of one comparison (:func:`_match`), its numbers (:func:`_comparison`).

    Raises:
        ValueError: a baseline names a level the factor does not have.
    """
    used = _used_finals(data, metric, fraction)
    rows = []
    for factor in data.factors if factors is None else factors:
        levels = sorted(used[factor].unique()) if factor in used else []
        if len(levels) < 2:
            continue
        base = _baseline(factor, levels, baselines or {})
        others = [c for c in data.factors if c != factor]
        contexts = list(used.groupby(others, sort=True)) if others else [((), used)]
        for level in [lv for lv in levels if lv != base]:
            matched = _match(contexts, others, factor, base, level)
            rows.append(
                {
                    "metric": metric,
                    "factor": factor,
                    "level": level,
                    "baseline": base,
                    **_comparison(matched, n_resamples, seed, two_sample or {}),
                    "held_fixed": ", ".join(others) or "(no other factor)",
                    "unmatched": "; ".join(matched.unmatched),
                }
            )
    return pd.DataFrame(rows, columns=[*EFFECT_COLUMNS, *interval_columns(two_sample or {})])


EFFECT_COLUMNS = ["metric", "factor", "level", "baseline", "delta", "ci_low", "ci_high", "level_mean", "base_mean",
                  "sd", "welch_low", "welch_high", "p", "p_min", "test", "arrangements", "resamples", "p_improve",
                  "p_ci_low", "p_ci_high", "n_pairs", "n_runs", "n_level", "n_base", "held_fixed",
                  "unmatched"]  # fmt: skip

# A statistic of one context's runs at the level (x) against its runs at the baseline (y), over the last axis, leading
# axes batching bootstrap resamples: probability_of_improvement is one.
TwoSample = Callable[[FloatArray, FloatArray], FloatArray]
Layout = list[tuple[list[int], list[int]]]  # per matched context: stratum indices at the baseline, at the level


def interval_columns(statistics: Mapping[str, object]) -> list[str]:
    """The columns an added statistic brings to a table: ``key, key_ci_low, key_ci_high`` each."""
    return [c for key in statistics for c in (key, f"{key}_ci_low", f"{key}_ci_high")]


def _used_finals(data: SweepData, metric: str, fraction: float) -> pd.DataFrame:
    """The runs whose final values enter the effects (:func:`_used_runs` per configuration), with a value."""
    per_run = final_per_run(data, metric, fraction)
    used = pd.concat([_used_runs(g)[0] for _, g in per_run.groupby("name", sort=True)], ignore_index=True)
    return used[np.isfinite(used["final"].to_numpy(dtype=float))]


def _baseline(factor: str, levels: Sequence[object], baselines: Mapping[str, str]) -> object:
    """The level the others are compared with: the one asked for, else the first sorted."""
    base = baselines.get(factor, levels[0])
    if base not in levels:
        raise ValueError(f"baseline {factor}={base}: {factor} has the levels {', '.join(map(str, levels))}")
    return base


@dataclass
class _Matched:
    """One comparison's data: each configuration's final values, and which contexts match which of them."""

    strata: list[FloatArray]  # one per configuration, in context order; an unmatched context's are left empty
    layout: Layout
    unmatched: list[str]  # the contexts that lack either level, as "factor=value, ..."

    def runs(self) -> list[tuple[FloatArray, FloatArray]]:
        """Per matched context: its runs at the level, its runs at the baseline."""
        return [(np.concatenate([self.strata[i] for i in hi]), np.concatenate([self.strata[i] for i in lo]))
                for lo, hi in self.layout]  # fmt: skip


def _match(
    contexts: Sequence[tuple[object, pd.DataFrame]], others: Sequence[str], factor: str, base: object, level: object
) -> _Matched:
    """The strata (one per configuration) of every context at ``base`` and at ``level``, and where both were run."""
    strata: list[FloatArray] = []
    layout: Layout = []
    unmatched = []
    for ctx, grp in contexts:
        sides = []
        for lv in (base, level):
            idx = []
            for _, cfg in grp[grp[factor] == lv].groupby("name", sort=True):
                idx.append(len(strata))
                strata.append(cfg["final"].to_numpy(dtype=float))
            sides.append(idx)
        if sides[0] and sides[1]:
            layout.append((sides[0], sides[1]))
        else:
            for i in sides[0] + sides[1]:  # drop the strata of an unmatched context again
                strata[i] = np.zeros(0)
            unmatched.append(", ".join(f"{o}={v}" for o, v in zip(others, _as_tuple(ctx), strict=True)))
    return _Matched(strata, layout, unmatched)


def _delta(layout: Layout) -> Callable[[list[FloatArray]], FloatArray]:
    """The effect over strata laid out as ``layout``: per context, the level's mean of configuration means minus the
    baseline's, averaged over contexts."""

    def delta(s: list[FloatArray]) -> FloatArray:
        diffs = [
            np.mean([s[i].mean(axis=-1) for i in hi], axis=0) - np.mean([s[i].mean(axis=-1) for i in lo], axis=0)
            for lo, hi in layout
        ]
        return np.asarray(np.mean(diffs, axis=0))

    return delta


def _per_context(statistic: TwoSample, layout: Layout) -> Callable[[list[FloatArray]], FloatArray]:
    """``statistic`` of each context's runs at the level against its runs at the baseline, averaged over contexts
    (as rliable averages over tasks)."""

    def averaged(s: list[FloatArray]) -> FloatArray:
        per_context = [
            statistic(np.concatenate([s[i] for i in hi], axis=-1), np.concatenate([s[i] for i in lo], axis=-1))
            for lo, hi in layout
        ]
        return np.asarray(np.mean(per_context, axis=0))

    return averaged


def _comparison(m: _Matched, n_resamples: int, seed: int, two_sample: Mapping[str, TwoSample]) -> dict[str, object]:
    """The numbers of one comparison: effect and P(improvement) with their bootstrap CIs, the permutation test behind
    the verdict, the Welch interval and pooled SD behind a seed plan, both sides' means and run counts."""
    layout = m.layout

    def interval(statistic: Callable[[list[FloatArray]], FloatArray]) -> Interval:
        return _paired_interval(m.strata, statistic, n_resamples, seed) if layout else _NO_INTERVAL

    d = interval(_delta(layout))
    p = interval(_per_context(probability_of_improvement, layout))
    # The test behind the verdict: each context's runs at the level against its runs at the baseline.
    runs = m.runs()
    test = permutation_test(runs) if layout else None
    welch_low, welch_high = welch_interval(runs) if layout else (math.nan, math.nan)
    numbers: dict[str, object] = {
        "delta": d.point,
        "ci_low": d.low,
        "ci_high": d.high,
        "level_mean": _side_mean(m.strata, [hi for _, hi in layout]),
        "base_mean": _side_mean(m.strata, [lo for lo, _ in layout]),
        "sd": pooled_sd([m.strata[i] for lo, hi in layout for i in (*lo, *hi)]),
        "welch_low": welch_low,
        "welch_high": welch_high,
        "p": test.p if test else math.nan,
        "p_min": test.p_min if test else math.nan,
        "test": test.method if test else "",
        "arrangements": test.arrangements if test else 0,
        "resamples": test.resamples if test else 0,
        "p_improve": p.point,
        "p_ci_low": p.low,
        "p_ci_high": p.high,
        "n_pairs": len(layout),
        "n_runs": d.n,
        "n_level": sum(m.strata[i].size for _, hi in layout for i in hi),
        "n_base": sum(m.strata[i].size for lo, _ in layout for i in lo),
    }
    for key, statistic in two_sample.items():
        numbers.update(interval(_per_context(statistic, layout)).columns(key))
    return numbers


def _side_mean(strata: Sequence[FloatArray], sides: Sequence[Sequence[int]]) -> float:
    """One side of a comparison: the mean over contexts of the mean of its configurations' seed means."""
    return float(np.mean([np.mean([strata[i].mean() for i in side]) for side in sides])) if sides else math.nan


_NO_INTERVAL = Interval(float("nan"), float("nan"), float("nan"), 0)


def _as_tuple(ctx: object) -> tuple[object, ...]:
    return ctx if isinstance(ctx, tuple) else (ctx,)


def _paired_interval(
    strata: list[FloatArray],
    statistic: Callable[[list[FloatArray]], FloatArray],
    n_resamples: int,
    seed: int,
) -> Interval:
    """Like :func:`stratified_bootstrap_ci`, but strata keep their positions (``statistic`` indexes them).

    Empty strata (unmatched contexts) stay in place as empty arrays and are never indexed.
    """
    n = sum(a.size for a in strata)
    point = float(np.asarray(statistic(strata)))
    low, high = _bootstrap_bounds(strata, statistic, n_resamples, CONFIDENCE, seed)
    return Interval(point, low, high, n)


def performance_profile(values: npt.ArrayLike, thresholds: npt.ArrayLike) -> FloatArray:
    """Fraction of runs whose final value exceeds each threshold: rliable's run-score performance profile.

    Written here because rliable itself does not install beside pandas 3 (its pin ``arch < 8`` fails to
    import there); the profile is one comparison per threshold.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    t = np.asarray(thresholds, dtype=float)
    if v.size == 0:
        return np.full(t.shape, np.nan)
    return np.asarray((v[None, :] > t[:, None]).mean(axis=1), dtype=float)
