"""The report's decision rule (rlsweep.analysis.verdicts): permutation tests checked against scipy's and against
an enumeration written out here, Holm against its definition as a closed test, the seed plan against the power
tables every statistics textbook prints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
from tolerance import sampling

from rlsweep.analysis.verdicts import (
    EXACT_LIMIT,
    HIGHER,
    LOWER,
    OPEN,
    decide,
    holm,
    permutation_test,
    seeds_for_power,
    seeds_to_decide,
    sign_flip_test,
    smallest_p,
)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(x.mean(axis=axis) - y.mean(axis=axis))


@pytest.mark.parametrize("n", [3, 5, 7])
def test_one_context_is_scipys_exact_permutation_test(n: int) -> None:
    rng = np.random.default_rng(n)
    for values in (rng.normal(size=(2, n)), rng.integers(0, 4, size=(2, n)).astype(float)):  # the second with ties
        x, y = values[0] + 0.7, values[1]
        ours = permutation_test([(x, y)])
        assert ours.exact and ours.arrangements == math.comb(2 * n, n)
        # With as many seeds on both sides the null distribution is symmetric, so scipy's two-sided p (twice the
        # smaller tail) is the share of arrangements at least as far from 0: the same count, the same float.
        theirs = scipy.stats.permutation_test(
            (x, y), _mean_difference, permutation_type="independent", vectorized=True, n_resamples=10**6
        )
        assert ours.p == theirs.pvalue


def test_many_arrangements_are_drawn_at_random_and_agree_with_the_exact_p() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(0.9, 1.0, 9), rng.normal(0.0, 1.0, 9)
    assert math.comb(18, 9) > EXACT_LIMIT
    ours = permutation_test([(x, y)])
    assert not ours.exact and ours.resamples == 10_000
    exact = scipy.stats.permutation_test(  # 48,620 arrangements: scipy enumerates them all
        (x, y), _mean_difference, permutation_type="independent", vectorized=True, n_resamples=math.comb(18, 9)
    ).pvalue
    # the random p is (1 + k) / (1 + B) with k binomial(B, p): within 5 of its standard errors of the exact p
    assert ours.p == pytest.approx(exact, abs=sampling(math.sqrt(exact * (1 - exact)), 10_000))
    assert permutation_test([(x, y)]).p == ours.p  # seeded: the same p every time


def test_contexts_are_permuted_separately_and_averaged() -> None:
    # Two contexts (the other factor's two settings) written out by hand: every pair of arrangements, one per
    # context, and the average of their two mean differences.
    a = (np.array([5.0, 7.0, 6.0]), np.array([1.0, 2.0, 4.0]))
    b = (np.array([30.0, 33.0]), np.array([31.0, 20.0, 25.0]))
    ours = permutation_test([a, b])

    def arrangements(x: np.ndarray, y: np.ndarray) -> list[float]:
        pooled = np.concatenate([x, y])
        out = []
        for chosen in itertools.combinations(range(pooled.size), x.size):
            mask = np.zeros(pooled.size, dtype=bool)
            mask[list(chosen)] = True
            out.append(pooled[mask].mean() - pooled[~mask].mean())
        return out

    observed = ((a[0].mean() - a[1].mean()) + (b[0].mean() - b[1].mean())) / 2
    null = [(u + v) / 2 for u in arrangements(*a) for v in arrangements(*b)]
    assert ours.arrangements == len(null) == 20 * 10 and ours.statistic == pytest.approx(observed, rel=1e-12)
    expected = sum(abs(t) >= abs(observed) * (1 - 1e-12) for t in null) / len(null)
    assert ours.p == expected
    # unequal sides: no mirror image, so one arrangement is the most extreme
    assert ours.p_min == smallest_p([(3, 3), (2, 3)]) == 1 / 200


def test_three_seeds_cannot_reach_five_percent() -> None:
    separated = permutation_test([([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])])
    assert separated.p == separated.p_min == 0.1  # 2 of C(6, 3) = 20 arrangements
    (verdict,) = decide([separated], 0.05)
    assert verdict.decision == OPEN and verdict.seeds_to_decide == 4
    assert "smallest possible p is 0.1" in verdict.why() and "4 seeds per configuration could" in verdict.why()
    four = permutation_test([([10.0, 11.0, 12.0, 13.0], [1.0, 2.0, 3.0, 4.0])])
    assert four.p == 2 / 70
    assert decide([four], 0.05)[0].decision == HIGHER
    assert decide([permutation_test([([1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 12.0, 13.0])])])[0].decision == LOWER


def test_holm_is_the_closed_test_of_bonferroni_tests() -> None:
    # Holm's rejections equal those of the closed testing procedure whose local test of an intersection of k
    # hypotheses is Bonferroni (reject when some p <= alpha / k): H_i is rejected when every subset containing it is.
    rng = np.random.default_rng(3)
    for _ in range(200):
        m = int(rng.integers(1, 6))
        p = rng.uniform(0, 0.08, m) ** rng.uniform(0.5, 2)
        rejected, adjusted = holm(list(p), 0.05)
        for i in range(m):
            closed = all(
                min(p[list(s)]) <= 0.05 / len(s)
                for k in range(1, m + 1)
                for s in itertools.combinations(range(m), k)
                if i in s
            )
            assert rejected[i] == closed
            assert rejected[i] == (adjusted[i] <= 0.05)


def test_the_family_is_corrected() -> None:
    # p = 6 / 252 decides alone, but not as one of four comparisons (Holm's first level is 0.05 / 4)
    x, y = [5.0, 6.0, 7.0, 8.0, 9.0], [4.0, 4.5, 5.5, 3.0, 5.0]
    t = permutation_test([(x, y)])
    assert 0.0125 < t.p <= 0.05
    assert decide([t], 0.05)[0].decided
    four = decide([t] * 4, 0.05)
    assert not any(v.decided for v in four) and four[0].family == 4 and "Holm over 4 comparisons" in four[0].why()


def test_seed_plans_match_the_textbook_power_tables() -> None:
    # Two-sided two-sample t-test, alpha 0.05, power 0.8: 64 per group at d = 0.5, 26 at d = 0.8, 17 at d = 1
    # (Cohen 1988, Table 2.4.1; G*Power gives the same).
    assert seeds_for_power(0.5, 1.0, 0.05) == 64
    assert seeds_for_power(8.0, 10.0, 0.05) == 26
    assert seeds_for_power(-3.0, 3.0, 0.05) == 17
    # never fewer than a permutation test needs to decide at all, nor a plan for no effect
    assert seeds_for_power(100.0, 1.0, 0.05) == seeds_to_decide(0.05) == 4
    assert seeds_for_power(0.0, 1.0, 0.05) is None
    assert seeds_for_power(0.001, 1.0, 0.05) is None  # beyond 1000 seeds
    # a larger effect never needs more seeds, also where scipy's noncentral t gives up (noncentrality beyond ~37)
    plans = [seeds_for_power(effect, 1.29, 0.025) for effect in np.linspace(0.5, 40.0, 80)]
    assert all(a is not None and b is not None and b <= a for a, b in itertools.pairwise(plans))


def test_sign_flip_test_is_scipys_paired_permutation_test() -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(3.0, 2.0, 6)
    ours = sign_flip_test(values, 1.0)
    theirs = scipy.stats.permutation_test(
        (values - 1.0,), lambda d, axis=-1: d.mean(axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=10**6,
    )  # fmt: skip
    assert ours.exact and ours.arrangements == 64 and ours.p == theirs.pvalue
    assert sign_flip_test([5.0, 6.0, 7.0], 0.0).p == 0.25  # the smallest p at 3 seeds: 2 of 8 sign patterns
