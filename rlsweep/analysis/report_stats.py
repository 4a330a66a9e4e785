"""The statistics the report shows, one declaration each; this module owns what the report's tables and answer
sentences say about a number, and how the number reads.

``summary.md``, ``report.html`` and the W&B report (which carries ``summary.md``'s answer and tables) all render
from these declarations, so a statistic reads the same in each of them. A :class:`Table` is a row's label (what the
row is about: a configuration, a comparison, a factor level) and the statistics it shows (:class:`Shown`). A
statistic is a column (two when it has a bootstrap interval: its value, then its 95 % CI) and, where the answer
speaks of it, a phrase of the answer's sentence about the row (:meth:`Table.sentence`).

Adding a statistic is one :class:`Shown` in one of the tables below, and a test. A number the rows already carry
(the columns of :func:`rlsweep.analysis.stats.summarize`, :func:`~rlsweep.analysis.stats.paired_effects` and
:func:`~rlsweep.analysis.stats.ablation_table`) is read by its key; a new number brings how it is computed: an
``aggregate`` of a configuration's seeds (as the IQM is), or a ``two_sample`` statistic of a comparison's runs at the
level against those at the baseline (as P(improvement) is). The report hands those to ``summarize`` /
``paired_effects``, which compute each with the same bootstrap as their own numbers (columns ``key``,
``key_ci_low``, ``key_ci_high``) and write them to the CSV files too; :func:`estimate` declares such a statistic.

A statistic that means something for some metrics only names them in ``only_for`` (``Shown(..., only_for=(m,))``,
``estimate(..., only_for=(m,))``): for any other metric it is neither computed (:meth:`Table.aggregates`,
:meth:`Table.two_samples`), nor a column (:meth:`Table.render`), nor a phrase (:meth:`Table.sentence`), so the
other metrics' tables and CSV columns stay as they are. Empty ``only_for``: every metric. The optimality gap is one:
it is read against the normalised score's 1 (a human's score, Procgen's R_max), which a raw metric has not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlsweep.analysis.normalise import NORMALISED
from rlsweep.analysis.stats import FloatArray, Interval, TwoSample

Row = Mapping[str, Any]  # one row of a table: a summary, effects, ablation, runs or configurations record
Aggregate = Callable[[FloatArray], FloatArray]  # reduces the last axis (a configuration's seeds), like stats.iqm

NO_VALUE = "–"  # a number that does not exist (no run logged it); intervals use Interval.format's wording


# ------------------------------------------------------------------------------------------- how numbers read


def num(x: object, signed: bool = False) -> str:
    """Compact number for tables and sentences; a missing number as :data:`NO_VALUE`."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NO_VALUE
    if isinstance(x, float | np.floating):
        return f"{x:+.3g}" if signed else f"{x:.4g}"
    return str(x)


def signed(x: object) -> str:
    """A difference: always with its sign (``+58``, ``-3.1``)."""
    return num(x, signed=True)


def prob(p: object) -> str:
    """A probability with two decimals (0.50, 1.00), so that 1 reads as a probability, not a count."""
    return NO_VALUE if not isinstance(p, float | np.floating) or math.isnan(p) else f"{p:.2f}"


def text(x: object) -> str:
    """A word or list as it is; empty as :data:`NO_VALUE`."""
    return str(x) or NO_VALUE


def short_metric(metric: str) -> str:
    """``explore/cells`` -> ``cells``: the unit word of a sentence."""
    return metric.rsplit("/", 1)[-1]


# ------------------------------------------------------------------------------------------- the declarations


@dataclass(frozen=True)
class CI:
    """Where a row keeps a statistic's 95 % bootstrap interval, and the header of its column."""

    low: str  # the row's keys of the bounds and of the number of values behind them
    high: str
    n: str
    header: str = ""  # default: "<the statistic's header> 95 % CI"

    def cell(self, row: Row) -> str:
        # Interval.format words a missing interval the same in every table ("n/a (1 seed)", "no data").
        return Interval(math.nan, float(row[self.low]), float(row[self.high]), int(row[self.n])).format("{:.3g}")


@dataclass(frozen=True)
class Shown:
    """One statistic a table shows: its column (two with its interval) and how the answer's sentence says it."""

    header: str  # the column's header; "" for a statistic the answer's sentence says but no table shows
    cell: Callable[[Row], str]
    ci: CI | None = None
    phrase: Callable[[Row], str] | None = None  # its part of the answer's sentence; None: tables only
    # A test's result (p-value, verdict): shown for the answer's metrics only. Other metrics' effects describe; a
    # p-value outside the answer's family would be read as a finding that the family does not control.
    tested: bool = False
    key: str = ""  # the row's key of a number computed for this declaration (with aggregate or two_sample)
    aggregate: Aggregate | None = None  # computed from each configuration's seeds by stats.summarize
    two_sample: TwoSample | None = None  # computed from each comparison's runs by stats.paired_effects
    only_for: tuple[str, ...] = ()  # the metrics it is about (computed, shown, said); empty: every metric

    def applies(self, metric: str | None) -> bool:
        """Whether this statistic is about ``metric`` (``None``: no metric in particular, so unconditional only)."""
        return not self.only_for or metric in self.only_for

    def headers(self) -> list[str]:
        if not self.header:
            return []
        return [self.header] + ([self.ci.header or f"{self.header} 95 % CI"] if self.ci else [])

    def cells(self, row: Row) -> list[str]:
        if not self.header:
            return []
        return [self.cell(row)] + ([self.ci.cell(row)] if self.ci else [])


def column(header: str, key: str, fmt: Callable[[object], str] = num, **kw: Any) -> Shown:
    """A statistic the rows carry under ``key``, read with ``fmt``."""
    return Shown(header, lambda row: fmt(row[key]), **kw)


def said(phrase: Callable[[Row], str]) -> Shown:
    """A statistic the answer's sentence says but no table shows."""
    return Shown("", str, phrase=phrase)


def estimate(
    header: str,
    key: str,
    *,
    n: str,
    fmt: Callable[[object], str] = num,
    aggregate: Aggregate | None = None,
    two_sample: TwoSample | None = None,
    phrase: Callable[[Row], str] | None = None,
    only_for: tuple[str, ...] = (),
) -> Shown:
    """A number with its 95 % bootstrap interval in the columns ``key``, ``key_ci_low``, ``key_ci_high`` (``n``: the
    row's key of the values behind it); with ``aggregate`` or ``two_sample``, a number the report has computed;
    with ``only_for``, for those metrics only."""
    ci = CI(f"{key}_ci_low", f"{key}_ci_high", n)
    return Shown(
        header,
        lambda row: fmt(row[key]),
        ci,
        phrase,
        key=key,
        aggregate=aggregate,
        two_sample=two_sample,
        only_for=only_for,
    )


@dataclass(frozen=True)
class Rendered:
    """A table as text: its header, its rows' cells and each row's class (``warn``, ``bad`` or "")."""

    header: list[str]
    rows: list[list[str]]
    classes: list[str]

    def markdown(self) -> list[str]:
        """The table as Markdown lines, then an empty line."""
        out = ["| " + " | ".join(self.header) + " |", "| " + " | ".join("---" for _ in self.header) + " |"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows]
        return [*out, ""]


@dataclass(frozen=True)
class Table:
    """What a report table shows: each row's label (its first column and the subject of its sentence), then its
    statistics in order; ``row_class`` marks rows that need a look (``warn``) or are not what they should be
    (``bad``)."""

    label: Shown
    shown: tuple[Shown, ...]
    row_class: Callable[[Row], str] = lambda row: ""

    def _visible(self, tested: bool, metric: str | None) -> list[Shown]:
        return [self.label, *(s for s in self.shown if (tested or not s.tested) and s.applies(metric))]

    def render(self, rows: Iterable[Row], tested: bool = False, metric: str | None = None) -> Rendered:
        """The table of ``rows``; ``tested``: the tables of the answer's metrics, with their tests' columns;
        ``metric``: the metric the rows are about, which adds the statistics declared ``only_for`` it."""
        shown, rows = self._visible(tested, metric), list(rows)
        return Rendered(
            [h for s in shown for h in s.headers()],
            [[c for s in shown for c in s.cells(row)] for row in rows],
            [self.row_class(row) for row in rows],
        )

    def sentence(self, row: Row) -> str:
        """``<metric>: <label>: <phrase>, <phrase>, ...``: the row in words, as the answer says it."""
        phrases = ", ".join(s.phrase(row) for s in self.shown if s.phrase and s.applies(str(row["metric"])))
        return f"{row['metric']}: {self.label.cell(row)}: {phrases}"

    def aggregates(self, metric: str | None = None) -> dict[str, Aggregate]:
        """The numbers ``stats.summarize`` computes for this table beyond its own, for ``metric``."""
        return {s.key: s.aggregate for s in self.shown if s.aggregate and s.applies(metric)}

    def two_samples(self, metric: str | None = None) -> dict[str, TwoSample]:
        """The numbers ``stats.paired_effects`` computes for this table beyond its own, for ``metric``."""
        return {s.key: s.two_sample for s in self.shown if s.two_sample and s.applies(metric)}


# ------------------------------------------------------------------------- per configuration, of one metric


_IQM_CI, _MEAN_CI = CI("iqm_ci_low", "iqm_ci_high", "n_used"), CI("mean_ci_low", "mean_ci_high", "n_used")


def _iqm_phrase(row: Row) -> str:
    return f"IQM {num(row['iqm'])} {_IQM_CI.cell(row)} (95 % bootstrap CI)"


def optimality_gap(finals: FloatArray) -> FloatArray:
    """rliable's optimality gap (Agarwal et al. 2021): the mean over runs (the last axis) of max(1 - x, 0), how far
    the normalised final scores fall short of 1 (a human's score, Procgen's R_max); a score above 1 counts as 0, so
    lower is better and 0 means every run reached 1."""
    return np.mean(np.maximum(1.0 - finals, 0.0), axis=-1)


# Rows: stats.summarize, with "label" (the configuration by the factors that vary).
CONFIGURATION = Table(
    column("configuration", "label", str),
    (
        Shown("seeds (completed/total)", lambda row: f"{row['n_completed']}/{row['n_seeds_expected']}"),
        column("IQM", "iqm", ci=_IQM_CI, phrase=_iqm_phrase),
        column("mean", "mean", ci=_MEAN_CI, phrase=lambda row: f"mean {num(row['mean'])}"),
        said(lambda row: f"{row['n_used']} seed(s)"),
        # the normalised score's only: a raw metric has no 1 to fall short of
        estimate(
            "optimality gap (lower is better)",
            "optimality_gap",
            n="n_used",
            aggregate=optimality_gap,
            only_for=(NORMALISED,),
        ),
        column("notes", "notes", text),
    ),
    row_class=lambda row: "bad" if row["provisional"] else ("warn" if row["notes"] else ""),
)


# ------------------------------------------------------------------ per comparison: a level against its baseline


def _change(row: Row) -> str:
    """``142 → 200 cells (+41 %)``: both sides' values, then the relative change where the baseline is not 0."""
    base, level = float(row["base_mean"]), float(row["level_mean"])
    out = f"{num(base)} → {num(level)} {short_metric(str(row['metric']))}"
    if math.isfinite(base) and math.isfinite(level) and base != 0:
        out += f" ({100 * (level - base) / abs(base):+.0f} %)"
    return out


def _effect_phrase(row: Row) -> str:
    """``Δ +58 [10, 96] (95 % bootstrap CI)``."""
    if not (math.isfinite(float(row["ci_low"])) and math.isfinite(float(row["ci_high"]))):
        return f"Δ {signed(row['delta'])} (no interval with 1 seed per configuration)"
    return f"Δ {signed(row['delta'])} {_EFFECT_CI.cell(row)} (95 % bootstrap CI)"


def _seeds_phrase(row: Row) -> str:
    if int(row["n_pairs"]) > 1:
        return f"{row['n_level']} vs {row['n_base']} runs over {row['n_pairs']} matched settings of {row['held_fixed']}"
    return f"{row['n_level']} vs {row['n_base']} seeds"


_EFFECT_CI = CI("ci_low", "ci_high", "n_runs")

# Rows: stats.paired_effects, with "verdict" (the answer's, for the answer's metrics).
COMPARISON = Table(
    Shown("comparison", lambda row: f"{row['factor']}={row['level']} vs {row['factor']}={row['baseline']}"),
    (
        Shown("baseline → level", lambda row: f"{num(row['base_mean'])} → {num(row['level_mean'])}", phrase=_change),
        column("Δ", "delta", signed, ci=_EFFECT_CI, phrase=_effect_phrase),
        column("P(improvement)", "p_improve", prob, phrase=lambda row: f"P(improvement) {prob(row['p_improve'])}"),
        Shown("runs", lambda row: f"{row['n_level']} vs {row['n_base']}", phrase=_seeds_phrase),
        column("matched settings", "n_pairs", str),
        column("unmatched", "unmatched", text),
        Shown("permutation p", lambda row: f"{row['p']:.2g}" if math.isfinite(row["p"]) else NO_VALUE, tested=True),
        column("verdict", "verdict", lambda v: str(v or NO_VALUE), tested=True),
    ),
    row_class=lambda row: "warn" if row["unmatched"] else "",
)


# ------------------------------------------------------------ per factor level, averaged over the other factors

# Rows: stats.ablation_table.
LEVEL = Table(
    Shown("level", lambda row: f"{row['factor']}={row['level']}"),
    (
        column("mean", "mean", ci=CI("ci_low", "ci_high", "n_runs", header="95 % CI")),
        column("Δ vs first level", "delta", signed),
        column("runs", "n_runs", str),
        column("configurations", "n_configs", str),
    ),
)


# ------------------------------------------------------------- the runs and their seeds (report.html's appendix)

# Rows: SweepData.runs, with "label".
RUN = Table(
    column("run", "run_id", str),
    (
        column("configuration", "label", str),
        column("seed", "seed", str),
        column("status", "status", str),
        Shown("progress", lambda row: num(100 * row["progress"]) + " %"),
        column("lines", "n_logged", str),
        column("W&B id", "wandb_id", lambda v: str(v or NO_VALUE)),
        column("flags", "flags", text),
    ),
    row_class=lambda row: "bad" if row["status"] == "failed" else ("warn" if row["unfinished"] or row["flags"] else ""),
)

# Rows: SweepData.configs, with "label".
COVERAGE = Table(
    column("configuration", "label", str),
    (
        column("run name", "name", str),
        Shown("completed/runs", lambda row: f"{row['n_completed']}/{row['n_runs']}"),
        Shown("seeds", lambda row: ", ".join(map(str, row["seeds"]))),
        Shown("missing seeds", lambda row: text(", ".join(map(str, row["missing_seeds"])))),
        column("flags", "flags", text),
    ),
    row_class=lambda row: "warn" if row["flags"] else "",
)
