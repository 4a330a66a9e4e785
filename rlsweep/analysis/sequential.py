"""The statistics of ``rlsweep seeds``: which comparisons a sweep makes, and AdaStop replayed over its seeds.

This module owns the sequential test and nothing on disk or in a launcher (:mod:`rlsweep.launching.seeds` reads
the sweep, keeps ``seeds.json`` and launches the seeds).

* **Comparisons** are the report's "factor effects, other factors held fixed"
  (:func:`rlsweep.analysis.stats.paired_effects`): for each factor that varies, each non-baseline level against
  the baseline level (the first sorted, or the one chosen), within each context (combination of the other
  factors' values) where both were run. Each comparison is a pair of configurations that differ only in that
  factor; the configurations are AdaStop's agents.
* **The test** is AdaStop (Mathieu et al. 2023, "AdaStop: adaptive statistical testing for sound comparisons of
  deep RL agents"), the PyPI package ``adastop``: a group-sequential permutation test with at most ``K`` interim
  looks, ``n`` new seeds per agent per look, that controls the family-wise error over every comparison and every
  look at level ``alpha`` (it spends ``alpha * (k + 1) / K`` by look ``k``). A comparison ends ``larger`` or
  ``smaller`` (the level's configuration against the baseline's) when the test rejects equality; one still
  open after the ``K``-th look ends ``equal`` (no difference found within the cap: not a proof of equality).
  Early acceptance is off (``beta = 0``), so ``equal`` only ever comes from the cap.
* **Replay**: the comparator keeps state between looks (the permutation sets it conditions on, the level spent),
  and each ``rlsweep seeds`` is a new process. So the looks are replayed from the values: look ``k`` (1-based)
  uses the first ``k * n`` seeds of each configuration in seed order, with a fixed permutation seed; the same
  values give the same permutations and the same decisions, every time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

CONTINUE = "continue"
DECISIONS = ("larger", "smaller", "equal", CONTINUE)
# adastop's own default: the number of random permutations once the exact permutation set is larger.
PERMUTATIONS = 10_000
PERMUTATION_SEED = 0

# agent -> (seed, value) for every run of that configuration; NaN where the run has no usable value yet
# (not completed, or no value of the metric).
Samples = Mapping[str, Sequence[tuple[int, float]]]


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


@dataclass
class Look:
    """One interim look: the seeds it used per configuration, their means, and every decision after it."""

    index: int  # 1-based
    seeds: dict[str, list[int]]
    means: dict[str, float]
    decisions: dict[str, str]  # comparison label -> decision


@dataclass
class Replay:
    looks: list[Look]
    decisions: dict[str, str]  # comparison label -> decision now (continue before the first look)
    settings: Settings
    waiting: dict[str, list[int]] = field(
        default_factory=dict
    )  # active agent -> seeds of the next look lacking a value

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


def replay(comparisons: Sequence[Comparison], samples: Samples, settings: Settings) -> Replay:
    """Replay every look the values allow, in order, from a fresh comparator with the fixed permutation seed.

    Look ``k`` happens when every configuration of an open comparison has values for its first ``k * n`` seeds;
    the replay stops at the first look that cannot happen yet (``waiting`` says which seeds it lacks), when every
    comparison is decided, or after ``max_looks``.
    """
    from adastop import MultipleAgentsComparator  # imported here: it pulls in matplotlib

    settings.check()
    decisions = {c.label: CONTINUE for c in comparisons}
    result = Replay([], decisions, settings)
    if not comparisons:
        return result
    agents = sorted({a for c in comparisons for a in (c.agent, c.base_agent)})
    index = {a: i for i, a in enumerate(agents)}
    pairs = np.array([(index[c.agent], index[c.base_agent]) for c in comparisons])
    comparator = MultipleAgentsComparator(
        n=settings.n, K=settings.max_looks, B=settings.permutations, comparisons=pairs, alpha=settings.alpha,
        beta=0, seed=settings.permutation_seed,
    )  # fmt: skip
    ordered = {a: _ordered(samples, a) for a in agents}
    for k in range(settings.max_looks):
        need = (k + 1) * settings.n
        active = active_agents(comparisons, decisions)
        lacking = {a: [s for s, v in ordered[a][:need] if not math.isfinite(v)] for a in active}
        lacking = {a: s for a, s in lacking.items() if s or len(ordered[a]) < need}
        if lacking:
            result.waiting = lacking
            break
        # Every agent keeps its key (adastop indexes them by position); agents out of every open comparison keep
        # the values they had, which the comparator no longer reads.
        values = {a: np.asarray(_usable_prefix(ordered[a], need), dtype=float) for a in agents}
        comparator.partial_compare(values, verbose=False)
        # adastop keys its decisions by str() of each comparison's index pair, in the order given.
        for c, pair in zip(comparisons, comparator.comparisons, strict=True):
            decisions[c.label] = str(comparator.decisions[str(pair)])
        result.looks.append(
            Look(
                index=k + 1,
                seeds={a: [s for s, _ in ordered[a][:need]] for a in active},
                means={a: float(np.mean(values[a])) for a in active},
                decisions=dict(decisions),
            )
        )
        if comparator.is_finished:
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
