"""The sequential test of ``rlsweep seeds`` on synthetic per-run values: which comparisons a sweep makes, AdaStop
replayed over the seeds (decisions, the cap, reproducibility, binding recorded looks), its error rate on null data,
its permutation distribution and boundary against the ``adastop`` package, and the tests read from seeds.json."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from adastop import MultipleAgentsComparator

from rlsweep.analysis.sequential import (
    ADASTOP_013,
    CONTINUE,
    METHOD,
    Change,
    Settings,
    block_differences,
    build_comparisons,
    exact_masks,
    load_tests,
    next_seeds,
    replay,
)

NAN = float("nan")


def samples_of(values: dict[str, list[float]], first_seed: int = 1) -> dict[str, list[tuple[int, float]]]:
    return {a: [(first_seed + i, v) for i, v in enumerate(vs)] for a, vs in values.items()}


def against_first(agents: list[str]) -> list:
    """Each agent after the first against the first (they share that baseline), as the sweep's comparisons."""
    return build_comparisons({a: {"f": a} for a in agents}, ["f"], {"f": agents[0]})


def test_comparisons_pair_configurations_that_differ_in_one_factor_within_each_context() -> None:
    # A 2x2 grid plus one configuration whose context has no partner at the baseline.
    configs = {
        "none-a": {"motivation": "none", "model": "A"},
        "rnd-a": {"motivation": "rnd", "model": "A"},
        "none-b": {"motivation": "none", "model": "B"},
        "rnd-b": {"motivation": "rnd", "model": "B"},
        "snd-c": {"motivation": "snd", "model": "C"},
    }
    comps = build_comparisons(configs, ["motivation", "model"], {})
    labels = {c.label: (c.agent, c.base_agent) for c in comps}
    assert labels == {
        "motivation=rnd vs motivation=none [model=A]": ("rnd-a", "none-a"),
        "motivation=rnd vs motivation=none [model=B]": ("rnd-b", "none-b"),
        "model=B vs model=A [motivation=none]": ("none-b", "none-a"),
        "model=B vs model=A [motivation=rnd]": ("rnd-b", "rnd-a"),
    }
    # Another baseline turns the pairs around; snd-c still has no partner in its context.
    comps = build_comparisons(configs, ["motivation", "model"], {"motivation": "rnd"})
    motivation = sorted(c.label for c in comps if c.factor == "motivation")
    assert motivation == ["motivation=none vs motivation=rnd [model=A]", "motivation=none vs motivation=rnd [model=B]"]
    assert all("snd-c" not in (c.agent, c.base_agent) for c in comps)


def test_clearly_different_configurations_are_decided_within_the_cap_with_the_right_sign() -> None:
    rng = np.random.default_rng(1)
    base = list(rng.normal(0.0, 1.0, size=10))
    values = {"none": base, "rnd": [v + 10.0 for v in base], "worse": [v - 10.0 for v in base]}
    comps = build_comparisons({a: {"m": a} for a in values}, ["m"], {})
    settings = Settings(n=5, max_looks=2, alpha=0.05)
    result = replay(comps, samples_of(values), settings)
    assert result.decisions == {"m=rnd vs m=none": "larger", "m=worse vs m=none": "smaller"}
    assert result.finished and len(result.looks) == 1  # decided at the first look: the cap was not needed
    assert result.looks[0].seeds == {a: [1, 2, 3, 4, 5] for a in values}
    assert next_seeds(result, comps, samples_of(values), max_seed=10) == {}


def test_identical_configurations_end_equal_at_the_cap_after_every_look() -> None:
    same = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]
    values = {"a": same, "b": list(same)}
    comps = build_comparisons({a: {"f": a} for a in values}, ["f"], {})
    settings = Settings(n=3, max_looks=2, alpha=0.05)
    partial = replay(comps, samples_of({a: v[:3] for a, v in values.items()}), settings)
    assert partial.decisions == {"f=b vs f=a": CONTINUE} and len(partial.looks) == 1
    result = replay(comps, samples_of(values), settings)
    assert [look.decisions["f=b vs f=a"] for look in result.looks] == [CONTINUE, "equal"]
    assert result.finished and next_seeds(result, comps, samples_of(values), max_seed=6) == {}


def test_replaying_the_same_values_gives_the_same_looks_and_decisions() -> None:
    # n=5 over 3 looks: from the second look on the paths are drawn at random (252**2 > 10,000), so this checks
    # that the fixed permutation seed makes them the same draws on every replay.
    rng = np.random.default_rng(7)
    values = {"a": list(rng.normal(0, 1, 15)), "b": list(rng.normal(0.8, 1, 15)), "c": list(rng.normal(0, 1, 15))}
    comps = build_comparisons({a: {"f": a} for a in values}, ["f"], {})
    settings = Settings(n=5, max_looks=3, alpha=0.05)
    first = replay(comps, samples_of(values), settings)
    second = replay(comps, samples_of(values), settings)
    assert [(lk.index, lk.seeds, lk.means, lk.decisions, lk.boundaries) for lk in first.looks] == [
        (lk.index, lk.seeds, lk.means, lk.decisions, lk.boundaries) for lk in second.looks
    ]
    assert first.decisions == second.decisions
    assert len(first.looks) == 3  # the random-permutation looks were replayed too
    # Another permutation seed draws other paths: the boundaries of the random looks move.
    other = replay(comps, samples_of(values), Settings(n=5, max_looks=3, alpha=0.05, permutation_seed=1))
    assert other.looks[0].boundaries == first.looks[0].boundaries  # look 1 enumerates every arrangement: no draw
    assert other.looks[1].boundaries != first.looks[1].boundaries


def test_only_configurations_of_open_comparisons_get_the_next_seeds() -> None:
    # rnd is clearly above none (decided at look 1); same equals none (open): rnd gets no seeds, the others get
    # the next n seed numbers after the largest in the sweep.
    none = [0.0, 0.1, 0.2, 0.3, 0.4]
    values = {"none": none, "rnd": [v + 10 for v in none], "same": list(none)}
    comps = build_comparisons({a: {"f": a} for a in values}, ["f"], {})
    settings = Settings(n=5, max_looks=3, alpha=0.05)
    result = replay(comps, samples_of(values), settings)
    assert result.decisions == {"f=rnd vs f=none": "larger", "f=same vs f=none": CONTINUE}
    assert next_seeds(result, comps, samples_of(values), max_seed=7) == {"none": [8, 9, 10, 11, 12],
                                                                          "same": [8, 9, 10, 11, 12]}  # fmt: skip


def test_recorded_looks_are_binding_and_a_different_replay_is_reported() -> None:
    # The values decide rnd at look 1; a look recorded as open (its values were others then) keeps rnd open, so
    # rnd's configuration still gets the next seeds.
    none = [0.0, 0.1, 0.2, 0.3, 0.4]
    values = {"none": none, "rnd": [v + 10 for v in none], "same": list(none)}
    comps = build_comparisons({a: {"f": a} for a in values}, ["f"], {})
    settings = Settings(n=5, max_looks=3, alpha=0.05)
    recorded = [{"f=rnd vs f=none": CONTINUE, "f=same vs f=none": CONTINUE}]
    result = replay(comps, samples_of(values), settings, recorded)
    assert result.changed == [Change(1, "f=rnd vs f=none", CONTINUE, "larger")]
    assert result.decisions == recorded[0] and result.looks[0].decisions == recorded[0]
    assert set(next_seeds(result, comps, samples_of(values), max_seed=5)) == {"none", "rnd", "same"}
    # The other way round: a decision recorded at look 1 stands although the values no longer reach it.
    recorded = [{"f=rnd vs f=none": "larger", "f=same vs f=none": "smaller"}]
    result = replay(comps, samples_of(values), settings, recorded)
    assert result.changed == [Change(1, "f=same vs f=none", "smaller", CONTINUE)]
    assert result.finished and result.decisions == recorded[0]


def test_a_look_waits_for_seeds_without_values_and_those_are_run_again() -> None:
    # Seed 2 of b failed (no value): look 1 cannot happen, and the next batch reruns seed 2, adding no new seed.
    samples = {"a": [(1, 1.0), (2, 2.0)], "b": [(1, 1.5), (2, NAN)]}
    comps = build_comparisons({"a": {"f": "a"}, "b": {"f": "b"}}, ["f"], {})
    result = replay(comps, samples, Settings(n=2, max_looks=3, alpha=0.05))
    assert result.looks == [] and result.waiting == {"b": [2]}
    assert next_seeds(result, comps, samples, max_seed=2) == {"b": [2]}
    # A configuration with fewer seeds than a look needs gets new ones; seeds are read in seed order.
    samples = {"a": [(2, 2.0), (1, 1.0), (3, 0.5)], "b": [(1, 1.5)]}
    result = replay(comps, samples, Settings(n=2, max_looks=3, alpha=0.05))
    assert result.looks == [] and next_seeds(result, comps, samples, max_seed=3) == {"b": [4]}


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Settings(n=2, max_looks=3, alpha=1.5).check()
    with pytest.raises(ValueError, match="max_looks"):
        Settings(n=2, max_looks=0, alpha=0.05).check()


# ------------------------------------------------------------------------------------- against adastop 0.1.3


def _tie(n: int, scale: float) -> float:
    """How far two float computations of one look's difference may differ (sequential._rounding's bound)."""
    return 16.0 * n * float(np.finfo(float).eps) * scale


def test_one_look_signed_permutation_distribution_is_adastops() -> None:
    # Three agents, two comparisons sharing the baseline, n=3: C(6, 3) = 20 arrangements, all enumerated by both.
    rng = np.random.default_rng(3)
    z = [rng.normal(size=3) for _ in range(3)]
    pairs = np.array([(1, 0), (2, 0)])
    comparator = MultipleAgentsComparator(n=3, K=1, B=10_000, comparisons=pairs, alpha=0.05, beta=0, seed=0)
    comparator.n, comparator.current_comparisons = np.array([3, 3, 3]), pairs
    comparator.mean_diffs = {str(p): [] for p in pairs}
    theirs = comparator.compute_mean_diffs(0, z)
    blocks = np.array([np.concatenate([z[a], z[b]]) for a, b in pairs])
    ours = block_differences(exact_masks(3), blocks)
    assert ours.shape == (20, 2)
    for i, p in enumerate(pairs):
        np.testing.assert_allclose(ours[:, i], theirs[str(p)], rtol=0, atol=_tie(3, np.abs(blocks).max()))


def _adastop_boundary(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, str]:
    """adastop 0.1.3's boundary and decision for one comparison (agent 1 vs agent 0) at one look."""
    comparator = MultipleAgentsComparator(n=len(x), K=1, B=10_000, comparisons=np.array([(1, 0)]), alpha=alpha,
                                          beta=0, seed=0)  # fmt: skip
    comparator.partial_compare({"base": y, "agent": x}, verbose=False)
    return float(comparator.boundary[0][1]), str(comparator.decisions[str(np.array([1, 0]))])


def test_where_adastops_one_sided_boundary_differs_ours_is_the_quantile_of_the_absolute_difference() -> None:
    # n=4: 70 arrangements, so at alpha=0.2 at most 14 may lie above the boundary. Each |difference| appears twice
    # (an arrangement and its mirror image), so the signed distribution's 14 largest are only about 7 of the
    # largest |differences|: adastop's boundary lets about twice as many arrangements through.
    x, y = np.array([0.1, 2.3, -0.7, 1.4]), np.array([0.9, -1.2, 1.6, 0.3])
    alpha, arrangements = 0.2, 70
    d = block_differences(exact_masks(4), np.concatenate([x, y])[None, :])[:, 0]
    tie = _tie(4, 2.3)
    comps = against_first(["base", "agent"])
    look = replay(comps, samples_of({"base": list(y), "agent": list(x)}), Settings(4, 1, alpha)).looks[0]
    boundary = look.boundaries["f=agent vs f=base"]
    theirs, decision = _adastop_boundary(x, y, alpha)
    assert decision == "equal" and look.decisions == {"f=agent vs f=base": "equal"}  # both keep this one open
    assert boundary is not None and abs(boundary - theirs) > tie  # they differ
    # Ours: the smallest |difference| with at most alpha * 70 arrangements above it.
    above = np.count_nonzero(np.abs(d) > boundary + tie)
    assert above <= alpha * arrangements
    below = np.abs(d)[np.abs(d) < boundary - tie]
    assert np.count_nonzero(np.abs(d) > below.max() + tie) > alpha * arrangements  # the next one down lets more by
    # adastop's: that rule on the signed differences, which puts about 2 alpha of the |differences| above it.
    assert np.count_nonzero(d > theirs + tie) <= alpha * arrangements
    assert np.count_nonzero(np.abs(d) > theirs + tie) > 1.5 * alpha * arrangements


def _signed_rule_rejects(d: np.ndarray, alpha: float) -> np.ndarray:
    """adastop 0.1.3 at one look, one comparison, every arrangement enumerated: reject when |T| is above the
    boundary found on the signed differences (``d``: arrangements x datasets, the observed arrangement first)."""
    arrangements = d.shape[0]
    # its admissible values: (arrangements - 1 - j) / arrangements <= alpha for the j-th smallest signed difference
    j = math.ceil(arrangements - 1 - alpha * arrangements - 1e-9)
    return np.abs(d[0]) > np.sort(d, axis=0)[j]


def test_the_signed_rule_used_below_is_adastops_own() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        x, y = rng.normal(size=5), rng.normal(size=5)
        d = block_differences(exact_masks(5), np.concatenate([x, y])[None, :])
        _, decision = _adastop_boundary(x, y, 0.05)
        assert bool(_signed_rule_rejects(d, 0.05)[0]) == (decision != "equal")


# ---------------------------------------------------------------------------------- error rate on null data


def test_false_positive_rate_on_null_data_is_at_most_alpha_where_the_signed_rule_doubles_it() -> None:
    # One look, one comparison, n=5 vs 5 (252 arrangements, all enumerated), both configurations N(0, 1): any
    # rejection is a false positive. 2,000 datasets give a Monte-Carlo SE of sqrt(a (1 - a) / 2000) = 0.0049 at
    # a = 0.05, so a test at its level stays under alpha + 3 SE = 0.065 but for a 1-in-700 draw (this seed is
    # fixed). Ours rejects at most floor(0.05 * 252) = 12 arrangements of 252 (0.048); adastop's signed rule
    # about twice that, which the same bound catches.
    alpha, datasets, n = 0.05, 2000, 5
    rng = np.random.default_rng(2024)
    values = rng.normal(size=(datasets, 2, n))
    comps = against_first(["base", "agent"])
    settings = Settings(n, 1, alpha)
    ours = sum(
        replay(comps, samples_of({"agent": list(v[0]), "base": list(v[1])}), settings).decisions["f=agent vs f=base"]
        != "equal"
        for v in values
    )
    bound = alpha + 3 * math.sqrt(alpha * (1 - alpha) / datasets)
    assert ours / datasets <= bound, ours / datasets
    d = block_differences(exact_masks(n), values.reshape(datasets, 2 * n))  # arrangements x datasets
    signed = int(np.count_nonzero(_signed_rule_rejects(d, alpha)))
    assert signed / datasets > bound, signed / datasets


def test_family_wise_error_over_looks_and_comparisons_on_null_data_is_at_most_alpha() -> None:
    # Three comparisons sharing a baseline, each at alpha / 3, n=3, K=3, 1,000 random paths: looks 1 and 2 enumerate
    # (20 and 400 arrangements), look 3 draws (8,000 > 1,000), so alpha spending and the conditioning on the paths
    # left both play. 600 null sweeps: SE = sqrt(0.05 * 0.95 / 600) = 0.0089, bound alpha + 3 SE = 0.077.
    # Measured with this seed: 0.04; testing each look afresh at alpha (no spending, no conditioning): 0.10.
    alpha, sweeps, n, looks = 0.05, 600, 3, 3
    agents = ["base", "a", "b", "c"]
    comps = against_first(agents)
    settings = Settings(n, looks, alpha, permutations=1000)
    rng = np.random.default_rng(5)
    errors = 0
    for _ in range(sweeps):
        v = rng.normal(size=(len(agents), n * looks))
        result = replay(comps, samples_of({a: list(v[i]) for i, a in enumerate(agents)}), settings)
        errors += any(d in ("larger", "smaller") for d in result.decisions.values())
    assert errors / sweeps <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / sweeps), errors / sweeps


def test_replay_is_fast_enough_for_a_calibration() -> None:
    # 8 comparisons, 20 seeds per look, 5 looks, 10^4 random paths: measured 0.02 s of CPU once the permutation
    # tables are drawn (the first replay under a setting draws them, about 0.08 s); 0.1 s leaves 5x for a slower
    # machine. CPU time, not wall time: other processes on a shared machine do not count.
    agents = [f"c{i}" for i in range(9)]
    comps = against_first(agents)
    rng = np.random.default_rng(0)
    samples = samples_of({a: list(rng.normal(size=100)) for a in agents})
    settings = Settings(n=20, max_looks=5, alpha=0.05)
    assert len(replay(comps, samples, settings).looks) == 5
    times = []
    for _ in range(3):
        start = time.process_time()
        replay(comps, samples, settings)
        times.append(time.process_time() - start)
    assert min(times) < 0.1, times


# ---------------------------------------------------------------------------------------------- seeds.json


def test_load_tests_reads_the_first_format_as_test_1_and_lists_every_test(tmp_path: Path) -> None:
    comparison = {"label": "m=rnd vs m=none", "factor": "m", "level": "rnd", "baseline": "none", "context": {},
                  "configurations": ["rnd", "none"]}  # fmt: skip
    look = {"index": 1, "seeds": {"none": [1, 2], "rnd": [1, 2]}, "means": {"none": 1.0, "rnd": 3.0},
            "decisions": {"m=rnd vs m=none": "larger"}}  # fmt: skip
    # As rlsweep seeds wrote it with adastop 0.1.3: one test, its settings at the top level.
    (tmp_path / "seeds.json").write_text(json.dumps({
        "test": ADASTOP_013, "metric": "explore/cells", "n": 2, "max_looks": 3, "alpha": 0.05,
        "permutations": 10000, "permutation_seed": 0, "baselines": {}, "comparisons": [comparison],
        "looks": [look], "decisions": {"m=rnd vs m=none": "larger"}, "status": "decided", "batches": [],
        "updated": 5.0,
    }))  # fmt: skip
    (old,) = load_tests(tmp_path)
    assert (old.number, old.method, old.metric, old.settings) == (1, ADASTOP_013, "explore/cells", Settings(2, 3, 0.05))
    assert old.baselines == {"m": "none"}  # from the comparisons: the file kept only the baselines given
    assert (old.decisions, old.status, old.created, old.updated) == (
        {"m=rnd vs m=none": "larger"},
        "decided",
        None,
        5.0,
    )
    assert old.looks == [look] and old.data_changed == ""

    second = {"number": 2, "test": METHOD, "metric": "explore/cells", "baselines": {"m": "none"},
              "settings": {"n": 2, "max_looks": 3, "alpha": 0.1, "permutations": 10000, "permutation_seed": 0},
              "comparisons": [comparison], "looks": [], "decisions": {"m=rnd vs m=none": CONTINUE},
              "status": "open", "batches": [], "created": 6.0, "updated": 6.0,
              "data_changed": [{"look": 1, "comparison": "m=rnd vs m=none", "recorded": "larger",
                                "replayed": "continue", "time": 7.0}]}  # fmt: skip
    first = {k: v for k, v in json.loads((tmp_path / "seeds.json").read_text()).items()}
    first = {**{k: v for k, v in first.items() if k not in ("n", "max_looks", "alpha")}, "number": 1,
             "settings": {"n": 2, "max_looks": 3, "alpha": 0.05}}  # fmt: skip
    (tmp_path / "seeds.json").write_text(json.dumps({"tests": [second, first]}))
    tests = load_tests(tmp_path)
    assert [t.number for t in tests] == [1, 2] and tests[1].settings.alpha == 0.1
    assert tests[1].data_changed.startswith("a run's value changed after look 1 was recorded (m=rnd vs m=none")
    assert load_tests(tmp_path / "nowhere") == []
    (tmp_path / "seeds.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_tests(tmp_path)
