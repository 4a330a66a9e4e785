"""The sequential test of ``rlsweep seeds`` on synthetic per-run values: which comparisons a sweep makes, AdaStop
replayed over the seeds (decisions, the cap, reproducibility), and which seeds the next look needs."""

from __future__ import annotations

import numpy as np
import pytest

from rlsweep.analysis.sequential import (
    CONTINUE,
    Settings,
    build_comparisons,
    next_seeds,
    replay,
)

NAN = float("nan")


def samples_of(values: dict[str, list[float]], first_seed: int = 1) -> dict[str, list[tuple[int, float]]]:
    return {a: [(first_seed + i, v) for i, v in enumerate(vs)] for a, vs in values.items()}


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
    # n=5 over 3 looks: from the second look on, adastop draws random permutations (252**2 > 10,000), so this
    # checks that the fixed permutation seed makes them the same draws in every process.
    rng = np.random.default_rng(7)
    values = {"a": list(rng.normal(0, 1, 15)), "b": list(rng.normal(0.8, 1, 15)), "c": list(rng.normal(0, 1, 15))}
    comps = build_comparisons({a: {"f": a} for a in values}, ["f"], {})
    settings = Settings(n=5, max_looks=3, alpha=0.05)
    first = replay(comps, samples_of(values), settings)
    second = replay(comps, samples_of(values), settings)
    assert [(lk.index, lk.seeds, lk.means, lk.decisions) for lk in first.looks] == [
        (lk.index, lk.seeds, lk.means, lk.decisions) for lk in second.looks
    ]
    assert first.decisions == second.decisions
    assert len(first.looks) == 3  # the random-permutation looks were replayed too


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
