"""The report's verdicts: which comparisons a fixed set of seeds decides, at a family-wise error the report states.

This module owns the fixed-sample decision rule and nothing else (the sequential test of ``rlsweep seeds`` is
:mod:`rlsweep.analysis.sequential`; where it has run, its decision is the verdict instead, and
:mod:`rlsweep.analysis.report` says which decided).

* **The test** of one comparison (a factor's level against its baseline, the other factors held fixed) is a
  two-sided permutation test of the mean difference, stratified by context: within each combination of the other
  factors the runs' labels (level or baseline) are permuted, the statistic is the average over contexts of the
  level's mean minus the baseline's, and the p-value is the share of label arrangements whose statistic is at least
  as far from zero as the observed one. Under the null (the level changes nothing) every arrangement is equally
  likely, so the test holds its level at any seed count, for any distribution of the final metric: what a
  percentile bootstrap over 3 seeds cannot do (it can only recombine the 3 values, and its 95 % interval misses
  zero about one time in five on null data). It is exact (every arrangement enumerated) while there are at most
  :data:`EXACT_LIMIT` arrangements, else it draws :data:`PERMUTATIONS` random ones and reports ``(1 + k) / (1 + B)``,
  which is still a valid p-value (Phipson & Smyth 2010).
* **Few seeds** bound what any such test can say: with n vs n seeds in one context there are C(2n, n) arrangements,
  and the observed one and its mirror are always the two most extreme, so p >= 2 / C(2n, n): 0.1 at 3 vs 3, which
  can never reach 0.05. The verdict then says so, and how many seeds would let it decide.
* **The family** is every comparison of the report's answer (each level against its baseline, for each primary
  metric). Holm's step-down procedure holds it at ``alpha`` family-wise: the i-th smallest of m p-values is
  compared with alpha / (m - i + 1), in order, until one fails.
* **Planning**: how many seeds per configuration give 80 % power at an effect and spread, by the two-sample
  t-test's power (noncentral t), which the permutation test matches from about 10 seeds on
  (``benchmarks/calibration.py`` measures both).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.stats

ALPHA = 0.05
# Enumerate every arrangement up to this many (the exact test); draw this many random ones beyond it.
EXACT_LIMIT = 20_000
PERMUTATIONS = 10_000
PERMUTATION_SEED = 0
POWER = 0.8
MAX_PLANNED_SEEDS = 1000

HIGHER, LOWER, OPEN = "higher", "lower", "not decided"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PermutationTest:
    """A two-sided permutation test's result for one comparison."""

    statistic: float  # average over contexts of (level mean - baseline mean)
    p: float
    exact: bool  # every arrangement enumerated (else ``resamples`` random ones)
    arrangements: int  # the number of distinct label arrangements
    p_min: float  # the smallest p-value these seed counts allow
    resamples: int  # arrangements used: all of them when exact

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PermutationTest:
        """The test as :func:`rlsweep.analysis.stats.paired_effects` keeps it in a row of its table."""
        arrangements, resamples = int(row["arrangements"]), int(row["resamples"])
        p, p_min = float(row["p"]), float(row["p_min"])
        return cls(float(row["delta"]), p, resamples == arrangements, arrangements, p_min, resamples)

    @property
    def method(self) -> str:
        if self.exact:
            return f"exact permutation test ({self.arrangements:,} arrangements)"
        return f"permutation test ({self.resamples:,} random arrangements of {self.arrangements:.3g})"


def _arrangements(sizes: Sequence[tuple[int, int]]) -> int:
    return math.prod(math.comb(a + b, a) for a, b in sizes)


def smallest_p(sizes: Sequence[tuple[int, int]]) -> float:
    """The smallest two-sided p-value an exact permutation test can reach with these (level, baseline) seed counts
    per context: the observed arrangement and, where each context has as many seeds on both sides, its mirror
    image are the most extreme ones (ties only make p larger)."""
    mirrored = all(a == b for a, b in sizes)
    return min(1.0, (2 if mirrored else 1) / _arrangements(sizes))


def permutation_test(
    strata: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
    resamples: int = PERMUTATIONS,
    seed: int = PERMUTATION_SEED,
) -> PermutationTest:
    """Two-sided, stratified permutation test of ``mean(level) - mean(baseline)`` averaged over contexts.

    ``strata`` holds one ``(level values, baseline values)`` pair per context; NaNs are dropped, and a context
    without a value on either side is left out. Raises ValueError when no context has values on both sides.
    """
    pairs = []
    for x, y in strata:
        xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        xa, ya = xa[np.isfinite(xa)], ya[np.isfinite(ya)]
        if xa.size and ya.size:
            pairs.append((xa, ya))
    if not pairs:
        raise ValueError("a permutation test needs values on both sides of at least one context")
    sizes = [(x.size, y.size) for x, y in pairs]
    total = _arrangements(sizes)
    observed = float(np.mean([x.mean() - y.mean() for x, y in pairs]))
    exact = total <= EXACT_LIMIT
    if exact:
        null = np.zeros(1)
        for x, y in pairs:  # the statistic over the Cartesian product of every context's arrangements
            null = (null[:, None] + _all_differences(x, y)[None, :]).ravel()
    else:
        rng = np.random.default_rng(seed)
        null = np.zeros(resamples)
        for x, y in pairs:
            pooled = np.concatenate([x, y])
            picks = rng.permuted(np.broadcast_to(pooled, (resamples, pooled.size)), axis=1)
            null += picks[:, : x.size].mean(axis=1) - picks[:, x.size :].mean(axis=1)
    null /= len(pairs)
    p = _two_sided_p(null, observed, exact, total, resamples)
    return PermutationTest(observed, p, exact, total, smallest_p(sizes), total if exact else resamples)


def _two_sided_p(null: FloatArray, observed: float, exact: bool, total: int, resamples: int) -> float:
    """The share of ``null``'s arrangements at least as far from 0 as ``observed``, allowing for the rounding of
    sums taken in another order (scipy.stats.permutation_test's rule: 100 float64 epsilons of the observed value);
    ``(1 + k) / (1 + B)`` when the arrangements were drawn at random."""
    gamma = 100 * np.finfo(float).eps * abs(observed)
    extreme = int(np.count_nonzero(np.abs(null) >= abs(observed) - gamma))
    return min(1.0, extreme / total if exact else (1 + extreme) / (1 + resamples))


def _all_differences(x: FloatArray, y: FloatArray) -> FloatArray:
    """``mean(first) - mean(rest)`` for every choice of ``x.size`` of the pooled values as the first group."""
    pooled = np.concatenate([x, y])
    n, total = x.size, pooled.size
    chosen = np.array(list(itertools.combinations(range(total), n)), dtype=np.intp).reshape(-1, n)
    first = pooled[chosen].sum(axis=1)
    return np.asarray(first / n - (pooled.sum() - first) / (total - n), dtype=float)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise ``alpha``, and the adjusted p-values
    (``min(1, max_{j <= i} (m - j + 1) p_(j))`` in sorted order), each in the order given."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [bool(a <= alpha) for a in adjusted], [float(a) for a in adjusted]


@dataclass(frozen=True)
class Verdict:
    """What the family's test decided for one comparison, and everything a reader needs to check it."""

    decision: str  # HIGHER, LOWER or OPEN
    test: PermutationTest
    p_adjusted: float  # Holm over the family
    alpha: float
    family: int  # comparisons in the family
    seeds_to_decide: int | None  # seeds per configuration at which the test could reach its Holm level at all

    @property
    def decided(self) -> bool:
        return self.decision != OPEN

    def why(self) -> str:
        """The test, its p-value and level, in words: ``exact permutation test (20 arrangements), p = 0.10; ...``."""
        family = f"Holm over {self.family} comparisons" if self.family > 1 else "one comparison"
        text = f"{self.test.method}, p = {_p(self.test.p)}"
        if self.family > 1:
            text += f" (Holm-adjusted {_p(self.p_adjusted)})"
        text += f", family-wise α = {self.alpha:g} ({family})"
        if not self.decided and self.test.p_min * self.family > self.alpha:
            text += (
                f"; with these seeds no arrangement can reach p ≤ {self.alpha / self.family:.3g} "
                f"(the smallest possible p is {_p(self.test.p_min)})"
            )
            if self.seeds_to_decide is not None:
                text += f": {self.seeds_to_decide} seeds per configuration could"
        return text


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def decide(
    tests: Sequence[PermutationTest], alpha: float = ALPHA, contexts: Sequence[int] | None = None
) -> list[Verdict]:
    """The verdicts of one family: Holm over the tests' p-values; a rejected comparison is ``higher`` or ``lower``
    by the sign of its statistic. ``contexts`` (per test, default 1) says over how many contexts a comparison's
    seeds are split, for :func:`seeds_to_decide`."""
    rejected, adjusted = holm([t.p for t in tests], alpha)
    m = len(tests)
    out = []
    for i, (t, r, a) in enumerate(zip(tests, rejected, adjusted, strict=True)):
        decision = (HIGHER if t.statistic > 0 else LOWER) if r and t.statistic != 0 else OPEN
        k = contexts[i] if contexts else 1
        out.append(Verdict(decision, t, a, alpha, m, seeds_to_decide(alpha / m, k)))
    return out


def seeds_to_decide(level: float, contexts: int = 1, max_n: int = MAX_PLANNED_SEEDS) -> int | None:
    """The fewest seeds per configuration (the same on both sides of every context) at which a two-sided
    permutation test can reach ``p <= level`` at all; None beyond ``max_n``."""
    for n in range(1, max_n + 1):
        if smallest_p([(n, n)] * contexts) <= level:
            return n
    return None


def seeds_for_power(
    effect: float, sd: float, level: float, power: float = POWER, max_n: int = MAX_PLANNED_SEEDS
) -> int | None:
    """Seeds per configuration for ``power`` at ``effect`` (a mean difference) with seed-to-seed standard deviation
    ``sd``, two-sided at ``level``: the two-sample t-test's power from the noncentral t distribution, and never fewer
    than :func:`seeds_to_decide` allows. None when no ``n <= max_n`` reaches it (or the effect is 0)."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0:
        return None
    if sd <= 0:
        return seeds_to_decide(level, max_n=max_n)
    floor = seeds_to_decide(level, max_n=max_n)
    if floor is None:
        return None
    n = np.arange(max(2, floor), max_n + 1)  # every candidate at once: scipy's distributions take arrays
    df = 2 * n - 2
    nc = abs(effect) / (sd * np.sqrt(2 / n))
    crit = scipy.stats.t.ppf(1 - level / 2, df)
    with np.errstate(all="ignore"):
        achieved = scipy.stats.nct.sf(crit, df, nc) + scipy.stats.nct.cdf(-crit, df, nc)
    # scipy's noncentral t returns NaN far out in its tail (noncentrality beyond ~37): there the t statistic is as
    # good as normal, and the normal power is 1 to many digits.
    normal = scipy.stats.norm.sf(crit - nc) + scipy.stats.norm.cdf(-crit - nc)
    achieved = np.where(np.isfinite(achieved), achieved, normal)
    enough = np.flatnonzero(achieved >= power)
    return int(n[enough[0]]) if enough.size else None


def sign_flip_test(
    values: npt.ArrayLike, reference: float, resamples: int = PERMUTATIONS, seed: int = PERMUTATION_SEED
) -> PermutationTest:
    """Two-sided test of ``mean(values) == reference`` for a known reference (random play's score): under the null
    each run's difference from the reference is as likely positive as negative, so the p-value is the share of the
    2^n sign patterns whose mean difference is at least as far from zero. Exact up to :data:`EXACT_LIMIT`
    patterns; p >= 2 / 2^n (0.25 at 3 seeds)."""
    d = np.asarray(values, dtype=float)
    d = d[np.isfinite(d)] - reference
    if d.size == 0:
        raise ValueError("a sign-flip test needs at least one value")
    total = 2**d.size
    observed = float(d.mean())
    exact = total <= EXACT_LIMIT
    if exact:
        signs = 1 - 2 * ((np.arange(total)[:, None] >> np.arange(d.size)[None, :]) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, d.size))
    null = (signs * d).mean(axis=1)
    p = _two_sided_p(null, observed, exact, total, resamples)
    return PermutationTest(observed, p, exact, total, min(1.0, 2 / total), total if exact else resamples)


def pooled_sd(samples: Sequence[npt.ArrayLike]) -> float:
    """Seed-to-seed standard deviation pooled over configurations (each around its own mean): the spread a plan
    for more seeds assumes. NaN without a configuration of two seeds."""
    varying = [a for a in (np.asarray(x, dtype=float) for x in samples) if a.size >= 2]
    if not varying:
        return math.nan
    dof = sum(a.size - 1 for a in varying)
    return math.sqrt(sum(float(((a - a.mean()) ** 2).sum()) for a in varying) / dof)


def welch_interval(
    strata: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]], confidence: float = 0.95
) -> tuple[float, float]:
    """The t interval of the effect (the average over contexts of level mean minus baseline mean) with Welch's
    standard error and Welch-Satterthwaite degrees of freedom: what a plan for more seeds takes as the effect's
    uncertainty (at 3 seeds it is wider than a percentile bootstrap's, which undercovers there). NaN without two
    values on every side."""
    pairs = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in strata]
    pairs = [(x[np.isfinite(x)], y[np.isfinite(y)]) for x, y in pairs]
    if not pairs or any(x.size < 2 or y.size < 2 for x, y in pairs):
        return float("nan"), float("nan")
    k = len(pairs)
    effect = float(np.mean([x.mean() - y.mean() for x, y in pairs]))
    terms = [(float(v.var(ddof=1)) / v.size / k**2, v.size - 1) for x, y in pairs for v in (x, y)]
    se2 = sum(t for t, _ in terms)
    if se2 == 0:
        return effect, effect
    df = se2**2 / sum(t**2 / dof for t, dof in terms)
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(se2)
    return effect - half, effect + half


@dataclass(frozen=True)
class SeedPlan:
    """Seeds per configuration for :data:`POWER` at the effect seen, and over the effect's 95 % Welch interval."""

    effect: float
    sd: float  # seed-to-seed standard deviation, pooled over the configurations
    low: float  # the effect's 95 % Welch interval
    high: float
    level: float  # the two-sided level planned at
    at: int | None  # at the effect seen; None beyond MAX_PLANNED_SEEDS
    few: int | None  # at the interval's end farther from 0
    many: int | None  # at its nearer end; None when the interval contains 0 (no bound) or beyond MAX_PLANNED_SEEDS

    def text(self) -> str:
        def count(n: int | None) -> str:
            return f"more than {MAX_PLANNED_SEEDS}" if n is None else str(n)

        interval = f"its 95 % Welch interval [{self.low:.3g}, {self.high:.3g}]"
        spread = (
            f"no upper bound while {interval} contains 0"
            if self.low <= 0 <= self.high
            else f"{count(self.few)} over {interval}"
            if self.few == self.many
            else f"{count(self.few)} to {count(self.many)} over {interval}"
        )
        return (
            f"{100 * POWER:.0f} % power at the effect seen ({self.effect:+.3g}, pooled SD {self.sd:.3g}) needs "
            f"{count(self.at)} seeds per configuration ({spread}; planned at α = {self.level:.2g})"
        )


def seed_plan(effect: float, sd: float, low: float, high: float, level: float) -> SeedPlan | None:
    """The plan for an effect, its pooled seed SD and its interval (:func:`welch_interval`); None where the spread
    is unknown (one seed) or there is no effect to plan for."""
    if not all(math.isfinite(v) for v in (effect, sd, low, high)) or effect == 0:
        return None
    far, near = (high, low) if abs(high) >= abs(low) else (low, high)
    many = None if low <= 0 <= high else seeds_for_power(near, sd, level)
    return SeedPlan(effect, sd, low, high, level, seeds_for_power(effect, sd, level),
                    seeds_for_power(far, sd, level), many)  # fmt: skip
