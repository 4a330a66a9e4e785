"""How often the decision rules are wrong and how often they find a real effect, on simulated sweeps (issue #26).

    python benchmarks/calibration.py                 # the full grid (minutes), writes benchmarks/results/...
    python benchmarks/calibration.py --quick         # a smaller grid and fewer simulations
    python benchmarks/calibration.py --sims 2000 --seeds-sims 400 --workers 2

This file owns the simulation and the bookkeeping, not the rules: it imports the decision code the product runs
and calls it on simulated final metrics.

* **report**: the report's fixed-sample rule, :func:`rlsweep.analysis.verdicts.permutation_test` per comparison
  and :func:`rlsweep.analysis.verdicts.decide` (Holm) over the family.
* **seeds**: ``rlsweep seeds``' sequential rule, :func:`rlsweep.analysis.sequential.replay` over the comparisons
  :func:`rlsweep.analysis.sequential.build_comparisons` makes, ``n`` seeds per look and its default ``K`` looks.
* **welch**: Welch's t-test with Holm at the same α, the reference for power (on normal data the t-test is the
  most powerful test there is, so it says how much power the permutation test gives away).
* **bootstrap**: the report's rule before issue #26 (the "before" column): a level is higher / lower when the 95 %
  percentile-bootstrap interval of the mean difference misses 0, each comparison on its own. It is the product's
  ``scipy.stats.bootstrap`` call (:func:`rlsweep.analysis.stats._bootstrap_bounds`: 2000 resamples, percentile,
  the generator seeded with ``BOOTSTRAP_SEED`` for every comparison) run once over a batch of comparisons, which
  draws the same resampling indices the product drew for each comparison on its own
  (``tests/unit/test_calibration.py`` checks that the bounds are identical).

A simulated sweep has one factor with ``m + 1`` levels, each non-baseline level compared with the shared baseline
(the family is those ``m`` comparisons). Under the null every configuration draws from one distribution; under an
alternative every non-baseline level's mean is ``effect`` seed-to-seed standard deviations above the baseline's,
so every comparison is a true one, in the same direction. The values' shapes are those of real final metrics:

* ``normal``: N(0, 1);
* ``counts``: negative binomial with mean 4 and dispersion 2 (SD 3.5; 11 % zeros, integers with many ties), like
  the rooms or cells an exploring agent visits; an alternative raises the mean by ``effect`` baseline SDs, and the
  spread grows with it, as counts do;
* ``lognormal``: exp(0.8 Z), skewed with a heavy right tail; 0.8 is the SD of the log of the trained Road Runner
  scores (tests/integration/test_atari_learning.py); an alternative shifts it by ``effect`` SDs.

Per setting (rule, shape, n, m, effect): ``fwer`` is the share of simulated sweeps with a wrong decision (under the
null any rejection; under an alternative a rejection in the wrong direction), ``power`` the share of true
comparisons decided in the right direction, each with its Monte-Carlo standard error (power's over sweeps, since
comparisons that share a baseline are not independent), and ``seeds_run`` the seeds per configuration behind the
decisions (``n``; for the sequential rule ``n`` times the looks it took, averaged over sweeps: its power is bought
with up to ``K`` times the seeds). The fixed-sample rules see each configuration's first ``n``
seeds; the sequential rule sees up to ``K * n`` of the same draws (``n`` per look). Families of 1, 4 and 8 are the
first 1, 4 and 8 levels of one simulated 9-level sweep, so the rows of one (shape, n, effect) share their data.

Targets (``targets`` in the JSON; exit 1 when one fails): every false-positive rate of the report and seeds rules
is at most α + 3 SE, with the SE a rate of exactly α would have at that many simulations; and from 10 seeds on,
on normal data, the report rule's power is within 5 points of Welch's t-test with Holm. Every run is reproducible:
one seeded numpy Generator per (shape, n, effect), derived from ``--seed``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy
import scipy.stats

from rlsweep.analysis import sequential, verdicts
from rlsweep.analysis.stats import BOOTSTRAP_SEED, CONFIDENCE, N_RESAMPLES
from rlsweep.cli.seeds import DEFAULT_MAX_LOOKS

REPO = Path(__file__).resolve().parents[1]
ALPHA = verdicts.ALPHA
RULES = ("report", "welch", "bootstrap", "seeds")
SHAPES = ("normal", "counts", "lognormal")
SEEDS = (3, 5, 10, 20)
FAMILIES = (1, 4, 8)
EFFECTS = (0.0, 0.5, 1.0, 2.0)
LOOKS = DEFAULT_MAX_LOOKS  # rlsweep seeds' default K
# Sweeps per setting: at 1000 a rate of 5 % has an SE of 0.7 points. With 2 workers the full grid took 1367 s on the
# 2-core VM while others' tests took about one more core (results/cpu-2core-2026-12-07-calibration.json); most of it
# is the report's permutation tests at 10 and 20 seeds (10,000 random arrangements each) and the sequential replays.
SIMS = 1000
SEEDS_SIMS = 1000
QUICK = {"shapes": ("normal", "counts"), "seeds": (3, 10), "families": (1, 4), "effects": (0.0, 1.0),
         "sims": 200, "seeds_sims": 200}  # fmt: skip
TARGET_SE = 3.0  # a false-positive rate may exceed α by 3 SEs: one in 740 settings at exactly α would, by chance
POWER_GAP = 0.05  # the permutation test's power against the t-test's, on normal data from 10 seeds
POWER_FROM_SEEDS = 10  # below this the permutation test's discrete p-values cost it power the t-test does not lose

# Negative binomial counts: mean 4, dispersion 2 -> variance 4 + 4^2 / 2 = 12.
COUNT_MEAN, COUNT_DISPERSION = 4.0, 2.0
LOG_SD = 0.8

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SIGN = {verdicts.HIGHER: 1, verdicts.LOWER: -1, verdicts.OPEN: 0}
SEEDS_SIGN = {"larger": 1, "smaller": -1, "equal": 0, sequential.CONTINUE: 0}


def shape_sd(shape: str) -> float:
    """The baseline's seed-to-seed standard deviation: the unit of the effect."""
    if shape == "normal":
        return 1.0
    if shape == "counts":
        return math.sqrt(COUNT_MEAN + COUNT_MEAN**2 / COUNT_DISPERSION)
    if shape == "lognormal":
        return math.sqrt((math.exp(LOG_SD**2) - 1) * math.exp(LOG_SD**2))
    raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def simulate(shape: str, effect: float, sims: int, levels: int, seeds: int, rng: np.random.Generator) -> FloatArray:
    """Final metrics of ``sims`` sweeps: shape ``(sims, levels, seeds)``; level 0 is the baseline, every other
    level's mean is ``effect`` baseline SDs above it."""
    size = (sims, levels, seeds)
    shift = np.zeros((1, levels, 1))
    shift[:, 1:] = effect * shape_sd(shape)
    if shape == "normal":
        return rng.normal(size=size) + shift
    if shape == "counts":
        mean = COUNT_MEAN + shift  # numpy's negative_binomial(r, p) has mean r (1 - p) / p
        return rng.negative_binomial(COUNT_DISPERSION, COUNT_DISPERSION / (COUNT_DISPERSION + mean), size=size).astype(
            float
        )
    if shape == "lognormal":
        return np.exp(LOG_SD * rng.normal(size=size)) + shift
    raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


# Each rule maps values (sims, 1 + max(families), seeds) to decisions per family size m: an int array (sims, m) of
# +1 (level higher), -1 (lower), 0 (not decided) for the first m levels against the baseline.
Decisions = dict[int, IntArray]


def report_rule(values: FloatArray, families: Sequence[int], alpha: float = ALPHA) -> Decisions:
    """The report's rule: one permutation test per comparison, Holm over the first ``m`` of them."""
    sims = values.shape[0]
    out = {m: np.zeros((sims, m), dtype=np.int64) for m in families}
    for s in range(sims):
        tests = [verdicts.permutation_test([(values[s, j], values[s, 0])]) for j in range(1, max(families) + 1)]
        for m in families:
            out[m][s] = [SIGN[v.decision] for v in verdicts.decide(tests[:m], alpha)]
    return out


def welch_rule(values: FloatArray, families: Sequence[int], alpha: float = ALPHA) -> Decisions:
    """Welch's t-test per comparison, Holm over the family (the same Holm as the report's)."""
    level, base = values[:, 1 : max(families) + 1], values[:, :1]
    # Counts can tie on both sides (no variance, no p-value: not decided), or nearly (scipy warns of precision).
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = scipy.stats.ttest_ind(level, np.broadcast_to(base, level.shape), axis=-1, equal_var=False)
    p = np.where(np.isfinite(res.pvalue), res.pvalue, 1.0)
    sign = np.sign(np.nan_to_num(res.statistic)).astype(np.int64)
    out = {}
    for m in families:
        rejected = np.array([verdicts.holm(row, alpha)[0] for row in p[:, :m]], dtype=bool)
        out[m] = np.where(rejected, sign[:, :m], 0)
    return out


def bootstrap_bounds(level: FloatArray, base: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The old rule's 95 % interval of ``mean(level) - mean(base)`` over the last axis, for a batch of comparisons.

    The product's call (``_bootstrap_bounds`` over the strata ``[baseline, level]`` in that order, the generator
    seeded afresh for each comparison); scipy resamples a batch with one index set, which is what a fresh generator
    per comparison draws for each."""

    def delta(b: FloatArray, lv: FloatArray, axis: int = -1) -> FloatArray:
        return np.asarray(lv.mean(axis=axis) - b.mean(axis=axis))

    res = scipy.stats.bootstrap(
        (np.broadcast_to(base, level.shape), level), delta, n_resamples=N_RESAMPLES, vectorized=True, axis=-1,
        confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED),
    )  # fmt: skip
    return np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)


def bootstrap_rule(values: FloatArray, families: Sequence[int], chunk: int = 25) -> Decisions:
    """The rule before issue #26: higher when the bootstrap interval is above 0, lower when below, no correction
    for the family (each comparison was judged on its own). ``chunk`` sweeps at a time bound the memory: scipy holds
    every resample (chunk x 8 comparisons x 2000 x 20 seeds x 8 bytes = 64 MB per side at 20 seeds)."""
    width = max(families)
    sign = np.zeros((values.shape[0], width), dtype=np.int64)
    for start in range(0, values.shape[0], chunk):
        block = values[start : start + chunk]
        low, high = bootstrap_bounds(block[:, 1 : width + 1], block[:, :1])
        sign[start : start + chunk] = np.where(low > 0, 1, np.where(high < 0, -1, 0))
    return {m: sign[:, :m] for m in families}


def seeds_rule(
    values: FloatArray, families: Sequence[int], n: int, alpha: float = ALPHA, seeds_run: dict[int, float] | None = None
) -> Decisions:
    """``rlsweep seeds``: AdaStop replayed over each sweep's ``LOOKS * n`` seeds per configuration, ``n`` per look,
    the family every comparison of the first ``m`` levels with the baseline. ``seeds_run`` receives, per ``m``, the
    mean over sweeps of the seeds per configuration the looks took (``n`` times the looks until all were decided)."""
    sims = values.shape[0]
    settings = sequential.Settings(n=n, max_looks=LOOKS, alpha=alpha)
    out = {}
    for m in families:
        configs = {f"l{j}": {"factor": f"l{j}"} for j in range(m + 1)}
        comparisons = sequential.build_comparisons(configs, ["factor"], {"factor": "l0"})
        decisions = np.zeros((sims, m), dtype=np.int64)
        looks = np.zeros(sims)
        for s in range(sims):
            samples = {f"l{j}": list(enumerate(values[s, j, : LOOKS * n].tolist(), start=1)) for j in range(m + 1)}
            result = sequential.replay(comparisons, samples, settings)
            for c in comparisons:
                decisions[s, int(c.level[1:]) - 1] = SEEDS_SIGN[result.decisions[c.label]]
            looks[s] = len(result.looks)
        out[m] = decisions
        if seeds_run is not None:
            seeds_run[m] = float(looks.mean() * n)
    return out


@dataclass(frozen=True)
class Row:
    rule: str
    shape: str
    n: int
    m: int
    effect: float
    sims: int
    fwer: float
    fwer_se: float
    power: float | None
    power_se: float | None
    seeds_run: float  # seeds per configuration: n, or for the sequential rule the mean over sweeps of n x looks


def summarise(
    rule: str, shape: str, n: int, effect: float, decisions: Decisions, seeds_run: dict[int, float] | None = None
) -> list[Row]:
    """The rates of each family size's decisions: under the null a sweep errs with any rejection, under an
    alternative (every comparison true, levels higher) with any ``lower``."""
    rows = []
    for m, d in sorted(decisions.items()):
        sims = d.shape[0]
        wrong = np.any(d != 0, axis=1) if effect == 0 else np.any(d < 0, axis=1)
        fwer = float(wrong.mean())
        power = se = None
        if effect != 0:
            share = (d > 0).mean(axis=1)  # per sweep: its share of comparisons decided right
            power = float(share.mean())
            se = float(share.std(ddof=1) / math.sqrt(sims)) if sims > 1 else float("nan")
        used = (seeds_run or {}).get(m, float(n))
        rows.append(Row(rule, shape, n, m, effect, sims, fwer, math.sqrt(fwer * (1 - fwer) / sims), power, se, used))
    return rows


@dataclass(frozen=True)
class Unit:
    """One (shape, n, effect): one block of simulated sweeps that every rule and family size reads."""

    index: int
    shape: str
    n: int
    effect: float
    families: tuple[int, ...]
    sims: int
    seeds_sims: int
    rules: tuple[str, ...]
    seed: int


def run_unit(unit: Unit) -> tuple[list[Row], dict[str, float]]:
    """Every rule on one block of sweeps; also the seconds each rule took."""
    rng = np.random.default_rng([unit.seed, unit.index])
    sims = max(unit.sims, unit.seeds_sims if "seeds" in unit.rules else 0)
    values = simulate(unit.shape, unit.effect, sims, 1 + max(unit.families), LOOKS * unit.n, rng)
    fixed = values[: unit.sims, :, : unit.n]
    rules: dict[str, Callable[[], Decisions]] = {
        "report": lambda: report_rule(fixed, unit.families),
        "welch": lambda: welch_rule(fixed, unit.families),
        "bootstrap": lambda: bootstrap_rule(fixed, unit.families),
        "seeds": lambda: seeds_rule(values[: unit.seeds_sims], unit.families, unit.n, seeds_run=seeds_run),
    }
    rows, seconds = [], {}
    seeds_run: dict[int, float] = {}
    for rule in unit.rules:
        start = time.perf_counter()
        decisions = rules[rule]()
        rows += summarise(rule, unit.shape, unit.n, unit.effect, decisions, seeds_run if rule == "seeds" else None)
        seconds[rule] = time.perf_counter() - start
    return rows, seconds


def run_grid(units: Sequence[Unit], workers: int, log: Callable[[str], None] = print) -> list[Row]:
    """Every unit, in ``workers`` processes (1: in this one), a progress line as each ends."""
    start = time.perf_counter()
    rows: list[Row] = []

    def done(i: int, unit: Unit, result: tuple[list[Row], dict[str, float]]) -> None:
        rows.extend(result[0])
        times = " ".join(f"{r} {s:.1f}s" for r, s in result[1].items())
        log(f"[calibration] {i}/{len(units)} {unit.shape:9s} n={unit.n:<2d} effect={unit.effect:g}: {times} "
            f"(elapsed {time.perf_counter() - start:.0f} s)")  # fmt: skip

    # The slowest units (most seeds) first, so that no worker is left with a long one at the end.
    ordered = sorted(units, key=lambda u: -u.n)
    if workers <= 1:
        for i, unit in enumerate(ordered, 1):
            done(i, unit, run_unit(unit))
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = {pool.submit(run_unit, u): u for u in ordered}
            for i, future in enumerate(as_completed(futures), 1):
                done(i, futures[future], future.result())
    key = {r: i for i, r in enumerate(RULES)}
    return sorted(rows, key=lambda r: (key[r.rule], SHAPES.index(r.shape), r.n, r.m, r.effect))


def targets(rows: Iterable[Row], alpha: float = ALPHA) -> dict[str, Any]:
    """The checks: false-positive rates of the report and seeds rules, and the report rule's power against
    Welch's from 10 seeds on normal data. Each lists the settings that fail."""
    rows = list(rows)
    fp_fail = []
    for r in rows:
        if r.rule not in ("report", "seeds"):
            continue
        # The SE of a rate of exactly alpha: the rate the rule promises; a rule at alpha exceeds 3 of them in
        # 0.13 % of settings.
        bound = alpha + TARGET_SE * math.sqrt(alpha * (1 - alpha) / r.sims)
        if r.fwer > bound:
            fp_fail.append({**_key(r), "fwer": r.fwer, "bound": round(bound, 4)})
    welch = {(r.shape, r.n, r.m, r.effect): r for r in rows if r.rule == "welch"}
    power_fail, compared = [], 0
    for r in rows:
        w = welch.get((r.shape, r.n, r.m, r.effect))
        if r.rule != "report" or r.shape != "normal" or r.n < POWER_FROM_SEEDS or r.effect == 0 or w is None:
            continue
        compared += 1
        assert r.power is not None and w.power is not None
        if abs(r.power - w.power) > POWER_GAP:
            power_fail.append({**_key(r), "power": r.power, "welch_power": w.power})
    return {
        "false_positives": {
            "rule": f"every fwer of the report and seeds rules <= alpha + {TARGET_SE:g} SE (the SE of a rate of alpha "
            "at that many simulations)",
            "checked": sum(r.rule in ("report", "seeds") for r in rows),
            "failed": fp_fail,
            "pass": not fp_fail,
        },
        "power_vs_welch": {
            "rule": f"on normal data at n >= {POWER_FROM_SEEDS}, the report rule's power within "
            f"{POWER_GAP * 100:g} points of Welch's t-test with Holm",
            "checked": compared,
            "failed": power_fail,
            "pass": not power_fail,
        },
    }


def _key(r: Row) -> dict[str, Any]:
    return {"rule": r.rule, "shape": r.shape, "n": r.n, "m": r.m, "effect": r.effect}


def table(rows: Sequence[Row]) -> str:
    """One line per (shape, n, m, effect): every rule's fwer, then every rule's power, in percent."""
    rules = [r for r in RULES if any(row.rule == r for row in rows)]
    by = {(r.rule, r.shape, r.n, r.m, r.effect): r for r in rows}
    settings = sorted({(r.shape, r.n, r.m, r.effect) for r in rows}, key=lambda k: (SHAPES.index(k[0]), *k[1:]))
    head = "shape      n  m effect | " + " ".join(f"{'fp ' + r:>11s}" for r in rules) + " | "
    head += " ".join(f"{'pow ' + r:>11s}" for r in rules)
    if "seeds" in rules:
        head += " | seeds run"  # the sequential rule's mean seeds per configuration
    lines = [head]
    for s in settings:
        fp = " ".join(_pct(by[(r, *s)].fwer, by[(r, *s)].fwer_se) if (r, *s) in by else f"{'':>11s}" for r in rules)
        pw = " ".join(_pct(by[(r, *s)].power, by[(r, *s)].power_se) if (r, *s) in by else f"{'':>11s}" for r in rules)
        line = f"{s[0]:9s} {s[1]:2d} {s[2]:2d} {s[3]:6g} | {fp} | {pw}"
        if ("seeds", *s) in by:
            line += f" | {by[('seeds', *s)].seeds_run:9.1f}"
        lines.append(line)
    return "\n".join(lines)


def _pct(value: float | None, se: float | None) -> str:
    if value is None or se is None:
        return f"{'-':>11s}"
    return f"{100 * value:5.1f}±{100 * se:4.1f}"


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or None


RULE_SOURCES = ("rlsweep/analysis/verdicts.py", "rlsweep/analysis/sequential.py", "rlsweep/analysis/stats.py")


def _sources() -> dict[str, str | None]:
    """The git blob id of each file the rules come from, as the run read them: the working tree can differ from
    the commit (``git log --find-object=<id>`` finds the commit that holds a blob)."""
    out = {}
    for path in RULE_SOURCES:
        done = subprocess.run(["git", "hash-object", path], cwd=REPO, capture_output=True, text=True)
        out[path] = done.stdout.strip() or None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sims", type=int, default=None, help=f"sweeps per setting for report, welch and bootstrap "
                        f"(default {SIMS}; {QUICK['sims']} with --quick)")  # fmt: skip
    parser.add_argument("--seeds-sims", type=int, default=None, help=f"sweeps per setting for the seeds rule "
                        f"(default {SEEDS_SIMS}; {QUICK['seeds_sims']} with --quick)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smaller grid: " + ", ".join(
        f"{k} {v}" for k, v in QUICK.items() if k not in ("sims", "seeds_sims")))  # fmt: skip
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated, from: " + ", ".join(RULES))
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2: the 2-core VM's cores)")
    parser.add_argument("--seed", type=int, default=0, help="the simulation's seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (default: benchmarks/results/...)")
    parser.add_argument("--note", default="", help="what else ran on the machine, or anything a reader needs")
    args = parser.parse_args(argv)
    rules = tuple(r for r in args.rules.split(",") if r)
    if unknown := [r for r in rules if r not in RULES]:
        parser.error(f"--rules {unknown[0]}: unknown rule; allowed: {', '.join(RULES)}")
    full = {"shapes": SHAPES, "seeds": SEEDS, "families": FAMILIES, "effects": EFFECTS, "sims": SIMS,
            "seeds_sims": SEEDS_SIMS}  # fmt: skip
    grid: dict[str, Any] = dict(QUICK) if args.quick else full
    grid["sims"] = args.sims or grid["sims"]
    grid["seeds_sims"] = args.seeds_sims or grid["seeds_sims"]
    units = [
        Unit(i, shape, n, effect, tuple(grid["families"]), grid["sims"], grid["seeds_sims"], rules, args.seed)
        for i, (shape, n, effect) in enumerate(
            (s, n, e) for s in grid["shapes"] for n in grid["seeds"] for e in grid["effects"]
        )
    ]
    started = dt.datetime.now()
    commit, sources = _commit(), _sources()  # before the run: the code the workers import now
    load_before = list(os.getloadavg())
    print(f"[calibration] {len(units)} settings x {len(grid['families'])} family sizes, rules {', '.join(rules)}, "
          f"{grid['sims']} sweeps each ({grid['seeds_sims']} for seeds), {args.workers} worker(s), "
          f"load {load_before[0]:.2f}", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    rows = run_grid(units, args.workers, lambda line: print(line, flush=True))
    wall = time.perf_counter() - t0
    load_after = list(os.getloadavg())
    checks = targets(rows)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from throughput import host_info  # the machine, as every benchmark records it (imports torch: after the pool)

    result = {
        "date": started.isoformat(timespec="seconds"),
        "commit": commit,
        "rule_sources": sources,
        "command": ["python", "benchmarks/calibration.py", *(argv if argv is not None else sys.argv[1:])],
        "note": args.note,
        "machine": {
            **host_info(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "wall_s": round(wall, 1),
        "workers": args.workers,
        "seed": args.seed,
        "alpha": ALPHA,
        "grid": {k: list(v) if isinstance(v, tuple) else v for k, v in grid.items()},
        "looks": LOOKS,
        "shapes": {
            "normal": "N(0, 1)",
            "counts": f"negative binomial, mean {COUNT_MEAN:g}, dispersion {COUNT_DISPERSION:g}",
            "lognormal": f"exp({LOG_SD:g} Z)",
        },
        "effect_unit": {s: shape_sd(s) for s in SHAPES},
        "targets": checks,
        "rows": [asdict(r) for r in rows],
    }
    out = args.out or REPO / "benchmarks" / "results" / f"cpu-{os.cpu_count()}core-{started.date()}-calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    for name, check in checks.items():
        print(f"[calibration] target {name}: {'pass' if check['pass'] else 'FAIL'} ({check['rule']}; "
              f"{check['checked']} checked, {len(check['failed'])} failed)")  # fmt: skip
        for f in check["failed"]:
            print(f"[calibration]   {f}")
    print(f"[calibration] {wall:.0f} s; wrote {out}")
    return 0 if all(c["pass"] for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
