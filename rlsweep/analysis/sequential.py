"""The statistics of ``rlsweep seeds``: which comparisons a sweep makes, AdaStop replayed over its seeds, and the
tests recorded in ``seeds.json``.

This module owns the sequential test and the reading of ``<sweep_dir>/seeds.json``; nothing in a launcher
(:mod:`rlsweep.cli.seeds` reads the sweep, writes ``seeds.json`` and launches the seeds; the report lists
the recorded tests through :func:`load_tests`).

* **Comparisons** are the report's "factor effects, other factors held fixed"
  (:func:`rlsweep.analysis.stats.paired_effects`): for each factor that varies, each non-baseline level against
  the baseline level (the first sorted, or the one chosen), within each context (combination of the other
  factors' values) where both were run. Each comparison is a pair of configurations that differ only in that
  factor; the configurations are AdaStop's agents.
* **The test** is AdaStop (Mathieu et al. 2023, "AdaStop: adaptive statistical testing for sound comparisons of
  deep RL agents"): a group-sequential permutation test with at most ``K`` interim looks, ``n`` new seeds per
  agent per look, that controls the family-wise error over every comparison and every look at level ``alpha``.
  At look ``k`` (0-based) a comparison's statistic is ``T = sum over looks j <= k of (mean of the agent's j-th
  block of n seeds - mean of the baseline's)``; its permutation distribution permutes the 2n values of each
  look's block between the two configurations (one "path" = one such arrangement per look), conditioned on the
  paths that did not cross an earlier look's boundary. The boundary of look ``k`` is the smallest value ``b`` of
  ``|T|`` such that the share of paths that crossed at an earlier look plus the share above ``b`` now is at most
  ``alpha' * (k + 1) / K`` (alpha spending); a comparison whose ``|T|`` is above it ends ``larger`` or ``smaller``
  (the sign of ``T``: the level's configuration against the baseline's). Early acceptance is off (``beta = 0``),
  so ``equal`` only comes from the cap: a comparison still open after the ``K``-th look (no difference found
  within ``n * K`` seeds: not a proof of equality). While ``C(2n, n) ** (k + 1)`` is at most ``permutations``,
  every path is enumerated (exact); beyond, ``permutations`` random paths are drawn (the first is the observed
  arrangement), from ``permutation_seed``.
* **The family**: each of the m comparisons is its own test at ``alpha' = alpha / m`` (Bonferroni), so the
  family-wise error over every comparison and look is at most ``alpha``. The paper's step-down over the maximum
  of the comparisons' statistics, with one arrangement per path copied to every comparison, is not a
  rearrangement of the data when comparisons share a baseline (the baseline's values would go to several
  configurations at once), and it rejected too often: 6.2 +- 0.4 % for 5 % with 8 comparisons sharing a
  baseline, 5 seeds, one look, normal values (6.8 % on lognormal ones over 5 looks; benchmarks/calibration.py).
  Bonferroni is exact per comparison and a little conservative for the family, since comparisons that share a
  baseline are positively dependent.
* **Why our own implementation**: the PyPI package ``adastop`` 0.1.3 (``compare_agents.py``, ``partial_compare``)
  takes the boundary from the permutation distribution of ``max`` over comparisons of the *signed* differences
  and compares it with ``max |T|``: a one-sided threshold applied to a two-sided statistic, so it rejects at
  about twice its level (measured: 0.097 +- 0.013 on null data at alpha = 0.05, n = 5, one look). Fixing that
  needs a copy of ``partial_compare``, and its Python loops over 10^4 permutations per comparison per look are
  far too slow for a calibration that replays thousands of simulated sweeps. This one is vectorised numpy and
  takes its thresholds from ``|T|``. With one look and every arrangement enumerated, its signed differences are
  adastop's ``compute_mean_diffs``
  (tests/unit/test_sequential.py checks both against the package).
* **Replay**: each ``rlsweep seeds`` is a new process, so the looks are replayed from the values: look ``k``
  (1-based) uses the first ``k * n`` seeds of each configuration in seed order; the permutation tables depend
  only on the settings (and are the same in every process), so the same values give the same decisions. A look
  recorded in ``seeds.json`` is binding: its recorded decisions are replayed as they were (``recorded``), and
  where the values now decide otherwise the replay says so (``Replay.changed``).
* **Pre-registration**: ``seeds.json`` holds every test ever run on the sweep, numbered, each with the settings,
  comparisons and looks it was computed under (:func:`load_tests`); a test's settings never change once anything
  was computed under them, other settings begin a new test.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

CONTINUE = "continue"
DECISIONS = ("larger", "smaller", "equal", CONTINUE)
# adastop's own default: the number of random permutation paths once the exact set is larger.
PERMUTATIONS = 10_000
PERMUTATION_SEED = 0
STATE_FILE = "seeds.json"
# What a test in seeds.json was computed with: a test recorded with another method is not continued.
METHOD = "AdaStop (Mathieu et al. 2023), two-sided, rlsweep.analysis.sequential; beta=0 (no early acceptance)"
ADASTOP_013 = "AdaStop (Mathieu et al. 2023), adastop 0.1.3, beta=0 (no early acceptance)"  # seeds.json format 1

# agent -> (seed, value) for every run of that configuration; NaN where the run has no usable value yet
# (not completed, or no value of the metric).
Samples = Mapping[str, Sequence[tuple[int, float]]]
FloatArray = npt.NDArray[np.float64]

# OpenBLAS runs a matrix product on one thread while m*n*k stays under 4 * 65536; above, it starts its threads,
# which on a shared machine cost more than the product (measured on 2 busy cores: 20 ms median for one
# 10^4 x 40 x 8 product, 0.35 ms in chunks of 512 rows). So the paths go through the product in chunks under it.
_GEMM_ONE_THREAD = 4 * 65536


@dataclass(frozen=True)
class Comparison:
    """``factor=level`` against ``factor=baseline`` in one context: the configurations ``agent`` vs ``base_agent``."""

    factor: str
    level: str
    baseline: str
    context: tuple[tuple[str, str], ...]  # the other factors' values, held fixed
    agent: str
    base_agent: str
    suffix: str = ""  # set only when two pairs share factor, levels and context (configurations alike in every factor)

    @property
    def label(self) -> str:
        ctx = ", ".join(f"{k}={v}" for k, v in self.context)
        return (
            f"{self.factor}={self.level} vs {self.factor}={self.baseline}" + (f" [{ctx}]" if ctx else "") + self.suffix
        )

    def record(self) -> dict[str, Any]:
        """The comparison as seeds.json keeps it (what :class:`RecordedTest` gives back)."""
        return {
            "label": self.label,
            "factor": self.factor,
            "level": self.level,
            "baseline": self.baseline,
            "context": dict(self.context),
            "configurations": [self.agent, self.base_agent],
        }


def build_comparisons(
    configs: Mapping[str, Mapping[str, str]], factors: Sequence[str], baselines: Mapping[str, str]
) -> list[Comparison]:
    """Every comparison of the sweep: ``configs`` maps each configuration to its factor values.

    The same pairs as :func:`rlsweep.analysis.stats.paired_effects` matches (that function averages several
    configurations on one side of a context; here every configuration is an agent, so a context with two
    configurations alike in every factor gives one comparison per pair).
    """
    out: list[Comparison] = []
    for factor in factors:
        levels = sorted({c[factor] for c in configs.values()})
        base = baselines.get(factor, levels[0])
        others = [f for f in factors if f != factor]
        contexts: dict[tuple[tuple[str, str], ...], dict[str, list[str]]] = {}
        for agent in sorted(configs):
            ctx = tuple((o, configs[agent][o]) for o in others)
            contexts.setdefault(ctx, {}).setdefault(configs[agent][factor], []).append(agent)
        for level in levels:
            if level == base:
                continue
            for ctx in sorted(contexts):
                lv, bs = contexts[ctx].get(level, []), contexts[ctx].get(base, [])
                pairs = [(a, b) for a in lv for b in bs]
                for a, b in pairs:
                    suffix = f" ({a} vs {b})" if len(pairs) > 1 else ""
                    out.append(Comparison(factor, level, base, ctx, a, b, suffix))
    return out


@dataclass(frozen=True)
class Settings:
    """What fixes the test before its first look; changing any of them afterwards would void its error control."""

    n: int  # seeds per configuration per look
    max_looks: int  # K: the cap is n * K seeds per configuration
    alpha: float  # family-wise error over all comparisons and looks
    permutations: int = PERMUTATIONS
    permutation_seed: int = PERMUTATION_SEED

    def check(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1 (got {self.n})")
        if self.max_looks < 1:
            raise ValueError(f"max_looks must be at least 1 (got {self.max_looks})")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1) (got {self.alpha})")
        if self.permutations < 1:
            raise ValueError(f"permutations must be at least 1 (got {self.permutations})")
        if self.permutation_seed < 0:
            raise ValueError(f"permutation_seed must be at least 0 (got {self.permutation_seed})")


@dataclass
class Look:
    """One interim look: the seeds it used per configuration, their means, and every decision after it."""

    index: int  # 1-based
    seeds: dict[str, list[int]]
    means: dict[str, float]
    decisions: dict[str, str]  # comparison label -> decision
    # Per comparison open at this look: the boundary of its |T| (None: no arrangement could cross it), and the share
    # of its permutation paths that crossed a boundary up to this look.
    boundaries: dict[str, float | None] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """A recorded look that the values now decide otherwise: the recorded decision stands."""

    look: int  # 1-based
    comparison: str  # label
    recorded: str
    replayed: str


@dataclass
class Replay:
    looks: list[Look]
    decisions: dict[str, str]  # comparison label -> decision now (continue before the first look)
    settings: Settings
    waiting: dict[str, list[int]] = field(
        default_factory=dict
    )  # active agent -> seeds of the next look lacking a value
    changed: list[Change] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return all(d != CONTINUE for d in self.decisions.values())

    def decided_at(self, label: str) -> int | None:
        """The look (1-based) that decided ``label``, None while it continues."""
        for look in self.looks:
            if look.decisions.get(label, CONTINUE) != CONTINUE:
                return look.index
        return None


def active_agents(comparisons: Sequence[Comparison], decisions: Mapping[str, str]) -> list[str]:
    """The configurations in at least one comparison still open: the ones the next look needs seeds of."""
    return sorted({a for c in comparisons if decisions[c.label] == CONTINUE for a in (c.agent, c.base_agent)})


def _ordered(samples: Samples, agent: str) -> list[tuple[int, float]]:
    return sorted(samples.get(agent, ()), key=lambda sv: sv[0])


def _usable_prefix(entries: list[tuple[int, float]], need: int) -> list[float]:
    """The values of the first ``need`` seeds, cut at the first seed without a value."""
    out: list[float] = []
    for _, v in entries[:need]:
        if not math.isfinite(v):
            break
        out.append(float(v))
    return out


# ---------------------------------------------------------------------------------------------- permutations


@functools.lru_cache(maxsize=8)
def exact_masks(n: int) -> FloatArray:
    """Every arrangement of one look's block: which n of the 2n values (the agent's first, then the baseline's) go
    to the agent, as 0/1 rows in ``itertools.combinations`` order (adastop's), the observed one first."""
    rows = np.array(list(itertools.combinations(range(2 * n), n)), dtype=np.intp)
    masks = np.zeros((len(rows), 2 * n))
    np.put_along_axis(masks, rows, 1.0, axis=1)
    masks.flags.writeable = False
    return masks


@functools.lru_cache(maxsize=16)
def random_masks(n: int, paths: int, seed: int, look: int) -> FloatArray:
    """``paths`` random arrangements of look ``look``'s block (0-based), the observed one first: the same in every
    process for the same settings, and independent of the values (so cached: a calibration replays thousands of
    sweeps under one setting)."""
    rng = np.random.default_rng((seed, look))
    observed = np.arange(2 * n) < n
    masks = np.empty((paths, 2 * n))
    masks[0] = observed
    masks[1:] = rng.permuted(np.broadcast_to(observed, (paths - 1, 2 * n)), axis=1)
    masks.flags.writeable = False
    return masks


def block_differences(masks: FloatArray, blocks: FloatArray) -> FloatArray:
    """``mean(values the mask gives the agent) - mean(the others)`` for each mask (rows) and each comparison's block
    (``blocks``: one row of 2n values per comparison, the agent's n then the baseline's n)."""
    n = blocks.shape[1] // 2
    out = np.empty((masks.shape[0], blocks.shape[0]))
    rows = max(1, _GEMM_ONE_THREAD // max(1, masks.shape[1] * blocks.shape[0]))
    weights = np.ascontiguousarray(blocks.T)
    for start in range(0, masks.shape[0], rows):
        np.matmul(masks[start : start + rows], weights, out=out[start : start + rows])
    # sum(mask) - sum(rest) = 2 sum(mask) - sum(all); both sides have n values.
    return (2.0 * out - blocks.sum(axis=1)) / n


def _rounding(n: int, looks: int, scale: float) -> float:
    """How far two float computations of one path's ``T`` can differ (a path's and the observed one, or a mirror
    image's); values closer than this are ties. Each look's difference is ``(2 sum(mask) - sum(all)) / n`` over at
    most 2n values of magnitude at most ``scale``; a float sum of q such values is off by at most q * eps * q * scale
    (Higham: (q - 1) u sum|x|, u = eps / 2), so the difference is off by at most (2 n^2 + 4 n^2) eps scale / n =
    6n eps scale. Over ``looks`` looks and two computations: 12n * looks * eps * scale; 16 leaves room for the sums
    across looks."""
    return 16.0 * n * looks * float(np.finfo(float).eps) * scale


def _boundary(stats: FloatArray, total: int, level: float, tie: float) -> float:
    """The boundary of one comparison's ``|T|``: ``inf`` where no value can be one.

    ``stats`` holds ``T`` on the paths that crossed no earlier boundary, ``total`` the number of paths in all (those
    that crossed earlier included), ``level`` the level that may be spent by this look. The boundary is the smallest
    value ``b`` of the paths' ``|T|`` such that (crossed earlier + above ``b``) / total <= level: the two-sided
    (1 - level) quantile, conditioned on the paths left.
    """
    alive = stats.shape[0]
    # floor(level * total), where level * total is a count of paths computed to about 1e-16 relative: for any count
    # below 10^6, 1e-9 absorbs that rounding and never reaches the next integer.
    allowed = math.floor(level * total + 1e-9) - (total - alive)
    if allowed < 0 or alive == 0:
        return math.inf
    # adastop 0.1.3 takes np.max of the signed differences here while it compares the boundary with max |T|: a
    # one-sided threshold for a two-sided statistic (twice the level). Ours is the quantile of |T| itself.
    v = np.sort(np.abs(stats))
    above = alive - np.searchsorted(v, v + tie, side="right")  # paths above each candidate boundary
    i = int(np.argmax(above <= allowed))  # above is non-increasing and 0 at the largest value
    return float(v[i])


def _observed_mask(n: int) -> FloatArray:
    """The arrangement observed: the agent's n values to the agent."""
    return (np.arange(2 * n) < n).astype(float)[None, :]


@dataclass
class _Pair:
    """One comparison's own AdaStop: its permutation paths through the looks so far that crossed no boundary."""

    stats: FloatArray  # T on each path left (the observed arrangement's among them)
    ids: npt.NDArray[np.intp]  # the paths' rows in the random tables, once they are drawn
    total: int  # paths in all, those that crossed a boundary included
    exact: bool  # every path enumerated so far
    observed: float = 0.0
    blocks: list[FloatArray] = field(default_factory=list)  # each look's block: the agent's n values, the baseline's
    bounds: list[tuple[float, float]] = field(default_factory=list)  # each look's boundary and tie


def _random_paths(pair: _Pair, settings: Settings) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """The random paths through the looks before the last (their ``T``) that crossed none of their boundaries, and
    their rows in the random tables: a pair whose arrangements are now too many to enumerate draws whole paths,
    and each earlier look's boundary (found on every arrangement) says which of them are spent."""
    stats = np.zeros(settings.permutations)
    alive = np.ones(settings.permutations, dtype=bool)
    for j, (block, (bound, tie)) in enumerate(zip(pair.blocks[:-1], pair.bounds, strict=True)):
        table = random_masks(settings.n, settings.permutations, settings.permutation_seed, j)
        stats += block_differences(table, block)[:, 0]
        alive &= np.abs(stats) <= bound + tie
    ids = np.flatnonzero(alive)
    return stats[ids], ids


def replay(
    comparisons: Sequence[Comparison],
    samples: Samples,
    settings: Settings,
    recorded: Sequence[Mapping[str, str]] = (),
) -> Replay:
    """Replay every look the values allow, in order, with the fixed permutation tables.

    Look ``k`` happens when every configuration of an open comparison has values for its first ``k * n`` seeds;
    the replay stops at the first look that cannot happen yet (``waiting`` says which seeds it lacks), when every
    comparison is decided, or after ``max_looks``. Each comparison is its own two-sided AdaStop at ``alpha / m``
    (Bonferroni over the m comparisons: see the module docstring). ``recorded`` holds the decisions recorded after
    each look (seeds.json): those looks keep them, and ``changed`` lists where the values now decide otherwise.
    """
    settings.check()
    decisions = {c.label: CONTINUE for c in comparisons}
    result = Replay([], decisions, settings)
    if not comparisons:
        return result
    n, m = settings.n, len(comparisons)
    agents = sorted({a for c in comparisons for a in (c.agent, c.base_agent)})
    ordered = {a: _ordered(samples, a) for a in agents}
    arrangements = math.comb(2 * n, n)
    pairs = [_Pair(np.zeros(1), np.zeros(1, dtype=np.intp), 1, True) for _ in comparisons]
    scale = 0.0
    for k in range(settings.max_looks):
        need = (k + 1) * n
        active = active_agents(comparisons, decisions)
        lacking = {a: [s for s, v in ordered[a][:need] if not math.isfinite(v)] for a in active}
        lacking = {a: s for a, s in lacking.items() if s or len(ordered[a]) < need}
        if lacking:
            result.waiting = lacking
            break
        open_cols = [i for i, c in enumerate(comparisons) if decisions[c.label] == CONTINUE]
        values = {a: np.asarray(_usable_prefix(ordered[a], need), dtype=float) for a in active}
        blocks = {}
        for i in open_cols:
            c = comparisons[i]
            blocks[i] = np.concatenate([values[c.agent][k * n :], values[c.base_agent][k * n :]])[None, :]
            scale = max(scale, float(np.abs(blocks[i]).max()))
        tie = _rounding(n, k + 1, scale)
        # Alpha spending per comparison: alpha / m in all, (alpha / m) * (k + 1) / K by look k.
        level = settings.alpha / m * (k + 1) / settings.max_looks
        now = dict(decisions)
        bounds: dict[str, float | None] = {}
        for i in open_cols:
            pair, block = pairs[i], blocks[i]
            pair.blocks.append(block)
            pair.observed += float(block_differences(_observed_mask(n), block)[0, 0])
            if pair.exact and arrangements ** (k + 1) <= settings.permutations:
                step = block_differences(exact_masks(n), block)[:, 0]
                pair.stats = (pair.stats[:, None] + step[None, :]).ravel()
                pair.total *= arrangements
            else:
                if pair.exact:
                    pair.exact, pair.total = False, settings.permutations
                    pair.stats, pair.ids = _random_paths(pair, settings)
                table = random_masks(n, settings.permutations, settings.permutation_seed, k)
                pair.stats = pair.stats + block_differences(table, block)[pair.ids, 0]
            bound = _boundary(pair.stats, pair.total, level, tie)
            bounds[comparisons[i].label] = bound if math.isfinite(bound) else None
            if abs(pair.observed) > bound + tie:
                now[comparisons[i].label] = "larger" if pair.observed > 0 else "smaller"
            elif k == settings.max_looks - 1:  # the cap: what is still open ends equal (beta = 0: never before)
                now[comparisons[i].label] = "equal"
            pair.bounds.append((bound, tie))
        if k < len(recorded):  # binding: the recorded decisions stand; the replay only reports a difference
            for label, d in now.items():
                if d != recorded[k].get(label, CONTINUE):
                    result.changed.append(Change(k + 1, label, recorded[k].get(label, CONTINUE), d))
            now = {label: recorded[k].get(label, CONTINUE) for label in now}
        decisions.update(now)
        spent = {}
        for i in open_cols:
            pair = pairs[i]
            if decisions[comparisons[i].label] in (CONTINUE, "equal"):
                # The paths above the boundary are spent: the next look is conditioned on the others.
                keep = np.abs(pair.stats) <= pair.bounds[-1][0] + tie
                pair.stats, pair.ids = pair.stats[keep], (pair.ids if pair.exact else pair.ids[keep])
            spent[comparisons[i].label] = 1.0 - pair.stats.shape[0] / pair.total
        result.looks.append(
            Look(
                index=k + 1,
                seeds={a: [s for s, _ in ordered[a][:need]] for a in active},
                means={a: float(np.mean(values[a])) for a in active},
                decisions=dict(decisions),
                boundaries=bounds,
                spent=spent,
            )
        )
        if all(d != CONTINUE for d in decisions.values()):
            break
    result.decisions = decisions
    return result


def next_seeds(
    result: Replay, comparisons: Sequence[Comparison], samples: Samples, max_seed: int
) -> dict[str, list[int]]:
    """The seeds each configuration must run for the next look: the seeds among its first ``(looks + 1) * n``
    that lack a value (failed, cancelled, never run), then new seed numbers after ``max_seed`` (the largest
    seed of the whole sweep, so every configuration's new seeds carry the same numbers). Empty when every
    comparison is decided or the cap is reached."""
    s = result.settings
    if result.finished or len(result.looks) >= s.max_looks:
        return {}
    need = (len(result.looks) + 1) * s.n
    out: dict[str, list[int]] = {}
    for agent in active_agents(comparisons, result.decisions):
        entries = _ordered(samples, agent)[:need]
        seeds = [seed for seed, v in entries if not math.isfinite(v)]
        seeds += list(range(max_seed + 1, max_seed + 1 + need - len(entries)))
        if seeds:
            out[agent] = seeds
    return out


# ---------------------------------------------------------------------------------------------- seeds.json


@dataclass
class RecordedTest:
    """One sequential test recorded in ``seeds.json``: what it was computed under and every look it took."""

    number: int  # 1, 2, ... in the order the tests began
    metric: str
    settings: Settings
    baselines: dict[str, str]  # factor -> baseline level
    comparisons: list[dict[str, Any]]  # label, factor, level, baseline, context (dict), configurations
    looks: list[dict[str, Any]]  # index, seeds, means, decisions (label -> decision), boundary, spent
    decisions: dict[str, str]  # label -> decision after the last look
    status: str  # "open", "decided" or "cap reached"
    created: float | None  # time.time() when the test began (None: recorded before seeds.json kept it)
    updated: float | None
    data_changed: str  # "" or a sentence: a run's value changed after a recorded look
    method: str = METHOD  # the test it ran (ADASTOP_013 for a test recorded by adastop 0.1.3)
    batches: list[dict[str, Any]] = field(default_factory=list)  # for_look, time, runs

    def decided_at(self, label: str) -> int | None:
        """The look (1-based) that decided ``label``, None while it continues (as :meth:`Replay.decided_at`)."""
        return next((lk["index"] for lk in self.looks if lk["decisions"].get(label, CONTINUE) != CONTINUE), None)


def status_of(decisions: Mapping[str, str]) -> str:
    if any(d == CONTINUE for d in decisions.values()) or not decisions:
        return "open"
    return "cap reached" if any(d == "equal" for d in decisions.values()) else "decided"


def read_tests(sweep_dir: Path) -> list[dict[str, Any]]:
    """The tests in ``<sweep_dir>/seeds.json`` as recorded (a list of dicts, the first test first); [] without the
    file. The first format (one test, its settings at the top level, written before seeds.json kept several)
    reads as test 1. Raises ValueError, its message beginning with the file's path, when the file is not one
    rlsweep seeds wrote."""
    path = Path(sweep_dir) / STATE_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is unreadable ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("tests"), list):
        tests = data["tests"]
    elif isinstance(data, dict) and "comparisons" in data and "n" in data:
        keys = ("n", "max_looks", "alpha", "permutations", "permutation_seed")
        old = {k: v for k, v in data.items() if k not in keys}
        tests = [{**old, "number": 1, "test": data.get("test", ADASTOP_013),
                  "settings": {k: data[k] for k in keys if k in data}, "created": None}]  # fmt: skip
    else:
        raise ValueError(f"{path} is not a file rlsweep seeds wrote (no tests in it)")
    for t in tests:
        if not (isinstance(t, dict) and {"number", "metric", "settings", "comparisons"} <= t.keys()):
            raise ValueError(f"{path} has a test without its number, metric, settings or comparisons")
    return list(tests)


def recorded_test(raw: Mapping[str, Any]) -> RecordedTest:
    """A test as :func:`read_tests` gives it, typed."""
    s = raw["settings"]
    settings = Settings(
        int(s["n"]),
        int(s["max_looks"]),
        float(s["alpha"]),
        int(s.get("permutations", PERMUTATIONS)),
        int(s.get("permutation_seed", PERMUTATION_SEED)),
    )
    comparisons = [dict(c) for c in raw["comparisons"]]
    looks = [dict(lk) for lk in raw.get("looks", [])]
    decisions = dict(raw.get("decisions") or (looks[-1]["decisions"] if looks else {}))
    decisions = {c["label"]: decisions.get(c["label"], CONTINUE) for c in comparisons}
    # A first-format test kept only the baselines given; the comparisons say which level each factor was against.
    baselines = {**{c["factor"]: c["baseline"] for c in comparisons}, **dict(raw.get("baselines", {}))}
    return RecordedTest(
        number=int(raw["number"]),
        metric=str(raw["metric"]),
        settings=settings,
        baselines=baselines,
        comparisons=comparisons,
        looks=looks,
        decisions=decisions,
        status=str(raw.get("status") or status_of(decisions)),
        created=raw.get("created"),
        updated=raw.get("updated"),
        data_changed=data_changed_text(raw.get("data_changed", [])),
        method=str(raw.get("test", METHOD)),
        batches=list(raw.get("batches", [])),
    )


def data_changed_text(events: Sequence[Mapping[str, Any]]) -> str:
    """One sentence for the changes recorded after a test's looks ("" when none)."""
    if not events:
        return ""
    first = min(events, key=lambda e: int(e["look"]))
    looks = sorted({int(e["look"]) for e in events})
    where = f"look {looks[0]}" + (f" (and {len(looks) - 1} later look(s))" if len(looks) > 1 else "")
    if "comparison" in first:
        what = f"{first['comparison']} now replays as {first['replayed']}, recorded {first['recorded']}"
    else:
        what = f"{first['configuration']}'s mean is now {first['mean']:.6g}, recorded {first['recorded_mean']:.6g}"
    return f"a run's value changed after {where} was recorded ({what}); the recorded decisions stand"


def load_tests(sweep_dir: Path) -> list[RecordedTest]:
    """Every sequential test ``rlsweep seeds`` ran on the sweep, in the order they began ([] without seeds.json).
    Raises ValueError when seeds.json is unreadable."""
    return sorted((recorded_test(t) for t in read_tests(sweep_dir)), key=lambda t: t.number)
