"""What an ``rlsweep tune`` search found, as the report's "Tuning" section: read from ``tune.json``.

The tuner (:mod:`rlsweep.tuning.tuner`, a layer above this one) writes ``tune.json`` into the search sweep and the
same file into its confirm sweep, each naming both directories (``search_dir``, ``confirm_dir``): so the report of
either sweep finds what the search did without guessing from names, and the confirm sweep's report still has it if
the search sweep is moved away. Everything here is read from that file; nothing imports :mod:`rlsweep.tuning`.

Per arm the section shows every trial (its number, params, value at each rung, the steps it trained, and its state:
complete, pruned at a rung, failed with the reason, or not told yet), the steps each arm spent (the equal-budget
line), the chosen setting, each hyperparameter's importance and a sensitivity figure.

**Importance.** Successive halving leaves few complete trials (one of three in ``tune=smoke``), so importances are
computed on the value at the first rung, which every trial that did not fail reached: an in-memory Optuna study of
those trials is handed to ``optuna.importance.get_param_importances`` with fANOVA
(``FanovaImportanceEvaluator(seed=0)``: a random forest's functional ANOVA). Optuna 5's own default is PED-ANOVA,
which reads the top 10 % of the trials against the rest: with a handful of trials that is one trial against the
others, so it is not used. Where fANOVA raises, mean decrease in impurity (``MeanDecreaseImpurityImportanceEvaluator``,
also a random forest) stands in and the section says why. With fewer than :data:`MIN_TRIALS` such trials, or the same
value in all of them, the section says so in one line instead of numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsweep.analysis.report_stats import NO_VALUE, Rendered, num

STATE_FILE = "tune.json"
MIN_TRIALS = 3  # fewer trials with a first-rung value: no importances (one line says so)
_FANOVA, _MDI = "fANOVA", "mean decrease in impurity"


@dataclass
class ArmFound:
    """One arm's search as ``tune.json`` has it, with the importances computed here."""

    name: str
    label: str
    trials: list[dict[str, Any]]
    states: dict[str, int]
    spent_steps: int
    best: dict[str, Any] | None
    importance: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""  # how they were computed, or why there are none


@dataclass
class TuningFound:
    """A tune's search, for the report of its search sweep or of its confirm sweep."""

    role: str  # "search" or "confirm": which of the two sweeps the report is about
    search_dir: Path
    confirm_dir: Path
    metric: str
    direction: str
    budgets: list[int]
    space: dict[str, tuple[str, list[Any]]]  # key -> (kind, bounds or choices)
    fresh_seeds: list[int]
    trial_seeds: list[int]
    equal_budgets: bool
    confirmed: bool
    arms: list[ArmFound]


def read_tuning(sweep_dir: Path | str) -> TuningFound | None:
    """The search that ``sweep_dir`` belongs to (its ``tune.json``), or None for a sweep no tuner wrote.

    Raises:
        ValueError: a ``tune.json`` that cannot be read (one line naming the file).
    """
    path = Path(sweep_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        spec = state["spec"]
        search_dir = Path(state.get("search_dir") or path.parent)
        confirm_dir = Path(state["confirm_dir"])
        role = "confirm" if _same(path.parent, confirm_dir) else "search"
        space = {k: next(iter(v.items())) for k, v in state["space"].items()}
        arms = [
            ArmFound(name, str(a["label"]), list(a["trials"]), dict(a["states"]), int(a["spent_steps"]), a["best"])
            for name, a in state["arms"].items()
        ]
        found = TuningFound(role, search_dir, confirm_dir, str(spec["metric"]), str(spec["direction"]),
                            [int(b) for b in state["budgets"]], space, list(state["fresh_seeds"]),
                            list(state["trial_seeds"]), bool(state["equal_budgets"]), bool(state["confirmed"]),
                            arms)  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, StopIteration, AttributeError) as e:
        raise ValueError(f"{path}: not a readable tune.json ({type(e).__name__}: {e})") from None
    for arm in found.arms:
        arm.importance, arm.importance_note = importances(arm.trials, found.space, found.budgets[0])
    return found


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ importance


def first_rung_values(trials: Sequence[Mapping[str, Any]], budget: int) -> list[tuple[dict[str, Any], float]]:
    """(params, value) of every trial with a finite value at the rung of ``budget``."""
    out = []
    for t in trials:
        value = dict((int(s), v) for s, v in t["values"]).get(budget)
        if value is not None and math.isfinite(float(value)):
            out.append((dict(t["params"]), float(value)))
    return out


def _distributions(space: Mapping[str, tuple[str, list[Any]]]) -> dict[str, Any]:
    import optuna

    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for key, (kind, values) in space.items():
        if kind == "choice":
            out[key] = optuna.distributions.CategoricalDistribution(list(values))
        elif kind == "int":
            out[key] = optuna.distributions.IntDistribution(int(values[0]), int(values[1]))
        else:
            out[key] = optuna.distributions.FloatDistribution(float(values[0]), float(values[1]),
                                                              log=kind == "log_uniform")  # fmt: skip
    return out


def importances(
    trials: Sequence[Mapping[str, Any]], space: Mapping[str, tuple[str, list[Any]]], budget: int
) -> tuple[dict[str, float], str]:
    """Each hyperparameter's importance for the value at the first rung (``budget``), and a note on how (module
    docstring); ``({}, why)`` where there are too few trials or nothing varies."""
    rows = first_rung_values(trials, budget)
    at = f"the value at the first rung ({budget} agent steps) of {len(rows)} trial(s)"
    if len(rows) < MIN_TRIALS:
        return {}, f"too few trials for importances: {at} (at least {MIN_TRIALS} needed)"
    if len({v for _, v in rows}) == 1:
        return {}, f"no importances: every trial has the same value ({num(rows[0][1])}) at the first rung"
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, MeanDecreaseImpurityImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = _distributions(space)
    study = optuna.create_study()
    for params, value in rows:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    try:
        found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
        how = f"{_FANOVA} (Optuna, seed 0) on {at}"
    except Exception as e:
        fallback = MeanDecreaseImpurityImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=fallback)
        how = f"{_MDI} (Optuna, seed 0) on {at}; fANOVA failed: {type(e).__name__}: {e}"
    values = {k: float(v) for k, v in found.items()}
    if not all(math.isfinite(v) for v in values.values()):
        return {}, f"no importances: the estimate is not finite on {at}"
    if len(rows) < 10:
        how += "; a forest on so few points ranks the hyperparameters roughly, it does not measure them"
    return values, how


# ---------------------------------------------------------------------------------------------------- tables


def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def setting_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in params.items()) or NO_VALUE


def _state_text(t: Mapping[str, Any], budgets: Sequence[int], chosen: int | None) -> str:
    state = str(t["state"])
    if state == "complete":
        return "complete (chosen)" if t["number"] == chosen else "complete"
    if state == "pruned":
        reached = [int(s) for s, _ in t["values"]]
        rung = budgets.index(max(reached)) + 1 if reached and max(reached) in budgets else "?"
        return f"pruned after rung {rung}"
    if state == "fail":
        return f"failed: {t.get('reason') or 'no reason recorded'}"
    return f"{state} (not told yet: rerun the tune to finish it)"


def budget_table(found: TuningFound) -> Rendered:
    """One row per arm: its trials by state, the steps it spent, its best value and the chosen setting."""
    header = ["arm", "trials", "complete", "pruned", "failed", "steps spent", f"best {found.metric}", "chosen setting"]
    rows = []
    for a in found.arms:
        counts = [str(a.states.get(state, 0)) for state in ("complete", "pruned", "fail")]
        best = [num(a.best["value"]), setting_text(a.best["params"])] if a.best else [NO_VALUE, "none (none completed)"]
        rows.append([a.label, str(len(a.trials)), *counts, str(a.spent_steps), *best])
    classes = ["" if a.best else "bad" for a in found.arms]
    return Rendered(header, rows, classes)


def trial_table(found: TuningFound, arm: ArmFound) -> Rendered:
    """One row per trial of ``arm``: params, value at each rung, steps trained, state."""
    keys = list(found.space)
    header = ["trial", "run", *keys, *(f"value at {b}" for b in found.budgets), "steps", "state"]
    chosen = arm.best["number"] if arm.best else None
    rows, classes = [], []
    for t in sorted(arm.trials, key=lambda t: int(t["number"])):
        by_step = {int(s): v for s, v in t["values"]}
        rows.append([str(t["number"]), str(t.get("run_id") or NO_VALUE),
                     *(_value_text(t["params"][k]) if k in t["params"] else NO_VALUE for k in keys),
                     *(num(by_step.get(b)) for b in found.budgets), str(t["steps"]),
                     _state_text(t, found.budgets, chosen)])  # fmt: skip
        classes.append("bad" if t["state"] == "fail" else ("warn" if t["state"] not in ("complete", "pruned") else ""))
    return Rendered(header, rows, classes)


def importance_table(found: TuningFound) -> Rendered:
    """One row per arm: each hyperparameter's importance (they sum to 1), and how it was computed."""
    keys = list(found.space)
    rows = [[a.label, *(f"{a.importance[k]:.2f}" if k in a.importance else NO_VALUE for k in keys),
             a.importance_note] for a in found.arms]  # fmt: skip
    return Rendered(["arm", *keys, "how"], rows, ["" for _ in rows])


def section_lines(found: TuningFound) -> list[str]:
    """The section's sentences before its tables: what was searched, where, and whether the budgets were equal."""
    search_name, confirm_name = found.search_dir.name, found.confirm_dir.name
    space = ", ".join(f"{k} {kind} {values}" for k, (kind, values) in found.space.items())
    first = (f"This sweep is the confirm sweep of the search `{found.search_dir}`: each arm's chosen setting on "
             f"fresh seeds {found.fresh_seeds}; the answer above reads these runs only."
             if found.role == "confirm" else
             f"This sweep is a tune's search; its trials are tuned on seeds {found.trial_seeds} and decide nothing "
             f"by themselves: the answer is the report of its confirm sweep `{found.confirm_dir}`"
             + ("." if found.confirmed else " (not complete yet)."))  # fmt: skip
    lines = [first,
             f"Searched per arm: {space}; {found.direction} {found.metric}, the mean over the last 10 % of each rung's "
             f"steps; rungs at {found.budgets} agent steps (search sweep {search_name}, confirm sweep "
             f"{confirm_name})."]  # fmt: skip
    spent = {a.spent_steps for a in found.arms}
    if found.equal_budgets:
        lines.append(f"Equal budgets: yes, {next(iter(spent))} agent steps and {len(found.arms[0].trials)} trial(s) "
                     "per arm.")  # fmt: skip
    else:
        spent_by_arm = ", ".join(f"{a.label} {a.spent_steps}" for a in found.arms)
        lines.append(f"Equal budgets: NO ({spent_by_arm} agent steps; a trial failed or a search is unfinished): "
                     "compare the arms with care.")  # fmt: skip
    return lines


def section_tables(found: TuningFound) -> list[tuple[str, Rendered]]:
    """The section's tables, each with its title, rendered once for summary.md and report.html."""
    tables = [("Steps spent and the chosen setting, per arm", budget_table(found))]
    tables += [(f"Trials of {a.label} ({a.name})", trial_table(found, a)) for a in found.arms]
    tables.append(("Hyperparameter importance (share of the first rung's variance, per arm)", importance_table(found)))
    return tables


def section_figures(found: TuningFound, out: Path) -> list[tuple[str, Path]]:
    """Per arm: the trials' values against each hyperparameter (:func:`plot_sensitivity`)."""
    from rlsweep.analysis.plots import slug

    return [(f"{a.label}: each trial's value at each rung against each hyperparameter (hollow: pruned after that "
             "rung; red x: failed)", plot_sensitivity(found, a, out / f"tune_{slug(a.name)}.png"))
            for a in found.arms]  # fmt: skip


# ---------------------------------------------------------------------------------------------------- figure


def plot_sensitivity(found: TuningFound, arm: ArmFound, path: Path) -> Path:
    """One panel per hyperparameter: every value a trial reported (y) at its value of the hyperparameter (x), coloured
    by rung; filled for a trial that went on or completed, hollow for one pruned after it; a failed trial is a red
    x at its last value, or at the bottom edge when it has none. Log axis for a log-uniform hyperparameter."""
    from matplotlib import colormaps
    from matplotlib.ticker import NullFormatter
    from matplotlib.transforms import blended_transform_factory

    from rlsweep.analysis.plots import _new_figure, _save

    keys = list(found.space)
    fig = _new_figure(max(4.5, 3.6 * len(keys)), 3.6)
    axes = fig.subplots(1, max(1, len(keys)), squeeze=False)[0]
    cmap = colormaps["viridis"]
    colors = {b: cmap(0.15 + 0.7 * i / max(1, len(found.budgets) - 1)) for i, b in enumerate(found.budgets)}
    for ax, key in zip(axes, keys, strict=False):
        kind, values = found.space[key]

        def x_of(v: Any, kind: str = kind, values: list[Any] = values) -> float:
            return float(values.index(v)) if kind == "choice" else float(v)

        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        for t in arm.trials:
            if key not in t["params"]:
                continue
            x = x_of(t["params"][key])
            reported = [(int(s), float(v)) for s, v in t["values"] if v is not None and math.isfinite(float(v))]
            last = max((s for s, _ in reported), default=None)
            for step, value in reported:
                hollow = t["state"] == "pruned" and step == last
                ax.scatter([x], [value], s=36, marker="o", linewidths=1.5, edgecolors=[colors.get(step, "grey")],
                           facecolors="none" if hollow else [colors.get(step, "grey")], zorder=3)  # fmt: skip
            if t["state"] == "fail":
                if reported:
                    ax.scatter([x], [reported[-1][1]], marker="x", color="#b42318", s=60, zorder=4)
                else:
                    ax.scatter([x], [0.03], marker="x", color="#b42318", s=60, zorder=4, transform=bottom,
                               clip_on=False)  # fmt: skip
        if kind == "log_uniform":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks of a short log range overlap
        if kind == "choice":
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(key + (" (log)" if kind == "log_uniform" else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(found.metric)
    for b, c in colors.items():
        axes[-1].scatter([], [], color=c, s=36, label=f"rung at {b} steps")
    axes[-1].scatter([], [], facecolors="none", edgecolors="grey", s=36, label="pruned after it")
    if any(t["state"] == "fail" for t in arm.trials):
        axes[-1].scatter([], [], marker="x", color="#b42318", s=60, label="failed")
    axes[-1].legend(fontsize="small", loc="best")
    fig.suptitle(f"{arm.label}: sensitivity ({len(arm.trials)} trials)", fontsize="medium")
    return _save(fig, path)
