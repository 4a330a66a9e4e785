"""``rlsweep seeds <sweep_dir>``: more seeds only where a comparison is not decided yet, until it is or a cap is hit.

This module owns the command: reading a launched sweep, the state file ``<sweep_dir>/seeds.json``, and launching
the seeds a look needs as new points of the same sweep. The statistics (which comparisons, AdaStop, the replay
of the looks) are :mod:`rlsweep.analysis.sequential`'s.

One round is: load the sweep, take each run's final performance (completed runs only), replay every look the
values allow, write ``seeds.json``, and give the configurations of the comparisons still open the seeds of the
next look. Those seeds become points of the sweep exactly as a rerun of its own command would make them: each
configuration's recorded overrides with the new ``seed=``, planned and checked by
:mod:`rlsweep.launching.plan`, prepared by :func:`rlsweep.launching.points.prepare` into the same ledger, named
the same way, and started by the sweep's launcher with the settings of its command line (``sweep.json``).
Rounds repeat until every comparison is decided or the cap (``n * max_looks`` seeds per configuration) is
reached; ``--once`` stops after one batch. The local launcher waits for its runs, and so does SLURM with
``hydra.launcher.wait=true`` (its default, progress tables as for the sweep); a sweep launched with
``wait=false`` submits and returns, and rerunning ``rlsweep seeds`` once the jobs have ended takes the next
look (while they run, it refuses: their values would be missing from the look).

Exit status: 0 when the round(s) ran (or, ``--dry-run``, were shown), 1 when a launched seed did not complete
(rerun to resume it), 2 for bad input (nothing started), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsweep.analysis.sequential import (
    CONTINUE,
    DECISIONS,
    PERMUTATION_SEED,
    PERMUTATIONS,
    Comparison,
    Replay,
    Settings,
    build_comparisons,
    next_seeds,
    replay,
)

if TYPE_CHECKING:
    from rlsweep.analysis.load import SweepData
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.plan import Plan, Point

STATE_FILE = "seeds.json"
DEFAULT_ALPHA = 0.05
DEFAULT_MAX_LOOKS = 5  # adastop's default K
_SEED_SUFFIX = re.compile(r"^(?P<stem>.+)-s(?P<seed>-?\d+)$")
# Overrides of a configuration's record that say how to launch, not what: a new seed starts afresh, whatever the
# sweep's command said about resuming (resume=restart would set a rerun seed's progress aside).
_NOT_CARRIED = ("seed=", "resume=", "dry_run=", "+seed=")


class BadInput(ValueError):
    """One line for the user: the key, the value and what is allowed (exit status 2, nothing started)."""


@dataclass
class _Sweep:
    """What one round reads of the sweep."""

    dir: Path
    metric: str
    factors: list[str]
    configs: dict[str, dict[str, str]]  # configuration (run id without -s<seed>) -> factor values
    samples: dict[str, list[tuple[int, float]]]  # configuration -> (seed, final value, NaN if none yet)
    templates: dict[str, str]  # configuration -> run id of its lowest seed (its overrides make new seeds)
    max_seed: int


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except BadInput as e:
        print(f"rlsweep seeds: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[rlsweep] stopped; rerun rlsweep seeds to resume the seeds it started", file=sys.stderr)
        return 130
    except OSError as e:
        from rlsweep.launching.job import DISK_FULL

        if e.errno not in DISK_FULL:
            raise
        print(f"rlsweep seeds: error: {e}; free space, then rerun rlsweep seeds to resume", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlsweep seeds",
        description="Add seeds only to the configurations whose comparison (factor level vs baseline, other factors "
        "held fixed) is not decided yet, by the AdaStop sequential test, until decided or the cap.",
    )
    p.add_argument("sweep_dir", type=Path, help="a sweep directory written by python sweep.py -m")
    p.add_argument(
        "--metric",
        default=None,
        help="metric compared (default: explore/cells if logged, else explore/rooms, else episode/score)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FACTOR=LEVEL",
        help="baseline level of a factor (repeatable; default: the first level sorted)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help=f"family-wise error over all comparisons and looks (default {DEFAULT_ALPHA})",
    )
    p.add_argument(
        "--max-looks",
        type=int,
        default=None,
        help=f"K, the most looks: the cap is n*K seeds per configuration (default {DEFAULT_MAX_LOOKS})",
    )
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="seeds per configuration per look (default: the sweep's seeds per configuration)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print each comparison's decision and why, and the seeds it would add; launch nothing",
    )
    p.add_argument("--once", action="store_true", help="stop after one batch of seeds (and the look that follows)")
    return p


def _run(args: argparse.Namespace) -> int:
    from rlsweep.launching.ledger import Ledger

    sweep_dir = Path(args.sweep_dir).absolute()
    ledger = Ledger(sweep_dir)
    if not ledger.exists():
        raise BadInput(f"sweep_dir={args.sweep_dir} is not a launched sweep (no sweep.json); "
                       "allowed: a directory written by python sweep.py -m")  # fmt: skip
    info = ledger.launch_info()
    state = _read_state(sweep_dir)
    if _fixed(state) and args.metric is not None and args.metric != state.get("metric"):
        raise BadInput(f"--metric={args.metric} differs from the {state.get('metric')} this sweep's test began "
                       f"with ({STATE_FILE}); allowed: {state.get('metric')}, or remove {STATE_FILE} to begin a "
                       "new test")  # fmt: skip
    sweep = _read_sweep(sweep_dir, ledger, info, args.metric or state.get("metric"))
    baselines = _baselines(args.baseline, sweep, state)
    comparisons = build_comparisons(sweep.configs, sweep.factors, baselines)
    if not comparisons:
        raise BadInput(f"sweep_dir={args.sweep_dir}: no two configurations differ in one factor only (factors "
                       f"{', '.join(sweep.factors)}); allowed: a sweep with a configuration at each of two levels "
                       "of a factor, the other factors equal")  # fmt: skip
    settings = _settings(args, comparisons, sweep, state)
    _check_same_test(state, comparisons)
    launch_overrides = _launch_overrides(info)
    header = (
        f"[rlsweep] seeds: {sweep.dir.name}, metric {sweep.metric}; AdaStop over {len(comparisons)} "
        f"comparison(s), family-wise alpha={settings.alpha:g}, n={settings.n} seed(s) per configuration per "
        f"look, at most {settings.max_looks} look(s) ({settings.n * settings.max_looks} seeds per configuration)"
    )
    print(header, flush=True)
    batches = 0
    while True:
        result = replay(comparisons, sweep.samples, settings)
        _warn_changes(state, result)
        print(_decisions_text(comparisons, result, sweep), flush=True)
        if not args.dry_run:
            state = _write_state(sweep_dir, sweep, baselines, comparisons, result, state)
        batch = next_seeds(result, comparisons, sweep.samples, sweep.max_seed)
        if not batch:
            print(_final_line(result), flush=True)
            return 0
        if args.once and batches == 1:
            print(f"[rlsweep] stopped after one batch (--once); rerun rlsweep seeds {sweep_dir} for the next look",
                  flush=True)  # fmt: skip
            return 0
        print(_batch_text(batch, sweep, len(result.looks) + 1, args.dry_run), flush=True)
        if args.dry_run:
            return 0
        batch_plan = _plan_batch(sweep, batch, launch_overrides)
        todo = _prepare(batch_plan)
        state.setdefault("batches", []).append(
            {"for_look": len(result.looks) + 1, "time": time.time(), "runs": [p.run_id for p in batch_plan.points]}
        )
        _save(sweep_dir, state)
        code = _launch(batch_plan, todo)
        batches += 1
        if code == _SUBMITTED:
            print(f"[rlsweep] submitted without waiting (hydra.launcher.wait=false); once the jobs have ended "
                  f"(rlsweep status {sweep_dir}), rerun rlsweep seeds {sweep_dir} for the next look",
                  flush=True)  # fmt: skip
            return 0
        if code != 0:
            print(
                f"[rlsweep] some new seeds did not complete; rerun rlsweep seeds {sweep_dir} to resume them", flush=True
            )
            return code
        sweep = _read_sweep(sweep_dir, ledger, info, sweep.metric)


# ---------------------------------------------------------------------------------------------------- reading


def _read_sweep(sweep_dir: Path, ledger: Ledger, info: dict[str, Any], metric: str | None) -> _Sweep:
    """Every run's final performance for the metric (completed runs only), by configuration and seed."""
    from rlsweep.analysis.load import COMPLETED, load_sweep
    from rlsweep.analysis.stats import final_per_run
    from rlsweep.launching.points import running_elsewhere

    if info.get("launcher") == "slurm":
        from rlsweep.launching.slurm import reconcile

        reconcile(ledger)  # jobs that left the queue without recording an end
    try:
        data = load_sweep(sweep_dir)
    except (FileNotFoundError, ValueError) as e:
        raise BadInput(f"sweep_dir={sweep_dir}: {e}") from None
    open_runs = [Path(d) for d, s in zip(data.runs["run_dir"], data.runs["status"], strict=True) if s != COMPLETED]
    busy = running_elsewhere(open_runs)
    if busy:
        raise BadInput(f"run={busy[0].name} is still running or queued ({len(busy)} run(s) in all); allowed: rerun "
                       f"rlsweep seeds once they have ended (follow them with rlsweep status {sweep_dir})")  # fmt: skip
    metric = metric or default_metric(data)
    if metric not in data.metric_names:
        raise BadInput(f"--metric={metric} is not logged by this sweep's runs; allowed: {', '.join(data.metric_names)}")
    factors = list(data.factors)
    if not factors:
        raise BadInput(f"sweep_dir={sweep_dir}: no factor varies (every run has the same choices); allowed: "
                       "a sweep over two or more values of a group or key (motivation=none,rnd)")  # fmt: skip
    per_run = final_per_run(data, metric)
    configs: dict[str, dict[str, str]] = {}
    samples: dict[str, list[tuple[int, float]]] = {}
    templates: dict[str, tuple[int, str]] = {}
    for row in per_run.to_dict("records"):
        run_id, seed = str(row["run_id"]), int(row["seed"])
        # A configuration is the run id without its seed: the configuration name plus its value overrides (two
        # configurations that differ only in a value override share data.configs' name).
        match = _SEED_SUFFIX.match(run_id)
        stem = match.group("stem") if match else run_id
        configs.setdefault(stem, {f: str(row[f]) for f in factors})
        value = float(row["final"])
        if row["status"] == COMPLETED and not math.isfinite(value):
            raise BadInput(f"--metric={metric}: the completed run {run_id} has no value of it (never logged); "
                           f"allowed: a metric every run logs ({', '.join(data.metric_names)})")  # fmt: skip
        samples.setdefault(stem, []).append((seed, value if row["status"] == COMPLETED else float("nan")))
        if stem not in templates or seed < templates[stem][0]:
            templates[stem] = (seed, run_id)
    return _Sweep(sweep_dir, metric, factors, configs, samples, {k: v[1] for k, v in templates.items()},
                  max(data.seeds))  # fmt: skip


def default_metric(data: SweepData) -> str:
    """The metric the report leads with (:func:`rlsweep.analysis.report.primary_metrics`): cells on the maze,
    rooms on Montezuma, else the score."""
    from rlsweep.analysis.report import primary_metrics

    return (primary_metrics(data) or ["episode/score"])[0]


def _baselines(given: list[str], sweep: _Sweep, state: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in given:
        factor, sep, level = item.partition("=")
        if not sep:
            raise BadInput(f"--baseline={item} is not FACTOR=LEVEL; allowed factors: {', '.join(sweep.factors)}")
        if factor not in sweep.factors:
            raise BadInput(f"--baseline={item}: unknown factor {factor}; allowed: {', '.join(sweep.factors)}")
        levels = sorted({c[factor] for c in sweep.configs.values()})
        if level not in levels:
            raise BadInput(f"--baseline={item}: unknown level {level} of {factor}; allowed: {', '.join(levels)}")
        out[factor] = level
    stored = dict(state.get("baselines", {}))
    if _fixed(state) and given and {**stored, **out} != stored:
        raise BadInput(f"--baseline={','.join(given)} differs from the baselines this sweep's test began with "
                       f"({_pairs(stored) or 'the first levels'}, {STATE_FILE}); allowed: those, or remove "
                       f"{STATE_FILE} to begin a new test")  # fmt: skip
    return {**stored, **out}


def _settings(
    args: argparse.Namespace, comparisons: list[Comparison], sweep: _Sweep, state: dict[str, Any]
) -> Settings:
    """The test's settings: from seeds.json once it has looked (a change would void its error control), else from
    the options, n defaulting to the sweep's seeds per configuration (the fewest among the compared ones)."""
    agents = {a for c in comparisons for a in (c.agent, c.base_agent)}
    given = {"alpha": args.alpha, "max_looks": args.max_looks, "n": args.n}
    if _fixed(state):
        for key, value in given.items():
            if value is not None and value != state[key]:
                raise BadInput(f"--{key.replace('_', '-')}={value} differs from the {state[key]} this sweep's test "
                               f"began with ({STATE_FILE}); allowed: {state[key]}, or remove {STATE_FILE} to "
                               "begin a new test")  # fmt: skip
        s = Settings(state["n"], state["max_looks"], state["alpha"], state["permutations"], state["permutation_seed"])
    else:
        n = args.n if args.n is not None else min(len(sweep.samples[a]) for a in agents)
        alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
        max_looks = DEFAULT_MAX_LOOKS if args.max_looks is None else args.max_looks
        s = Settings(n, max_looks, alpha, PERMUTATIONS, PERMUTATION_SEED)
    try:
        s.check()
    except ValueError as e:
        key = str(e).split()[0]
        value = getattr(s, key)
        raise BadInput(f"--{key.replace('_', '-')}={value}: {e}") from None
    return s


def _fixed(state: dict[str, Any]) -> bool:
    """The test's settings, baselines and comparisons are fixed once it has looked or launched seeds."""
    return bool(state.get("looks") or state.get("batches"))


def _check_same_test(state: dict[str, Any], comparisons: list[Comparison]) -> None:
    if not _fixed(state):
        return
    before = [c["label"] for c in state.get("comparisons", [])]
    now = [c.label for c in comparisons]
    if before != now:
        added = sorted(set(now) - set(before)) or sorted(set(before) - set(now))
        raise BadInput(f"sweep_dir: the comparisons changed since this sweep's test began ({STATE_FILE}): "
                       f"{added[0] if added else 'their order'}; allowed: the sweep as it was, or remove "
                       f"{STATE_FILE} to begin a new test")  # fmt: skip


# ---------------------------------------------------------------------------------------------------- state


def _read_state(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / STATE_FILE
    if not path.exists():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{STATE_FILE}={path} is unreadable ({e}); allowed: a file rlsweep seeds wrote, or none "
                       "(remove it to begin a new test)") from None  # fmt: skip
    return data


def _write_state(
    sweep_dir: Path,
    sweep: _Sweep,
    baselines: dict[str, str],
    comparisons: list[Comparison],
    result: Replay,
    before: dict[str, Any],
) -> dict[str, Any]:
    """seeds.json: the settings, the comparisons, every look's seeds, means and decisions, the batches launched."""
    state = {
        "test": "AdaStop (Mathieu et al. 2023), adastop 0.1.3, beta=0 (no early acceptance)",
        "metric": sweep.metric,
        **asdict(result.settings),
        "baselines": baselines,
        "comparisons": [
            {
                "label": c.label,
                "factor": c.factor,
                "level": c.level,
                "baseline": c.baseline,
                "context": dict(c.context),
                "configurations": [c.agent, c.base_agent],
            }
            for c in comparisons
        ],
        "looks": [asdict(look) for look in result.looks],
        "decisions": result.decisions,
        "status": _status(result),
        "batches": before.get("batches", []),
        "updated": time.time(),
    }
    _save(sweep_dir, state)
    return state


def _save(sweep_dir: Path, state: dict[str, Any]) -> None:
    from rlsweep.record import write_json_atomic

    write_json_atomic(sweep_dir / STATE_FILE, state)


def _status(result: Replay) -> str:
    if not result.finished:
        return "open"
    return "cap reached" if any(d == "equal" for d in result.decisions.values()) else "decided"


def _warn_changes(state: dict[str, Any], result: Replay) -> None:
    """The replay is computed from the runs' values; a look recorded before that now decides otherwise means a
    value changed since (a run continued under a larger budget, say): say so, the replay stands."""
    for old in state.get("looks", []):
        new = next((lk for lk in result.looks if lk.index == old.get("index")), None)
        if new is not None and new.decisions != old.get("decisions"):
            print(f"[rlsweep] warning: look {new.index} now decides {_pairs(new.decisions)}, not "
                  f"{_pairs(old.get('decisions', {}))} as recorded in {STATE_FILE}: a run's value changed since",
                  file=sys.stderr, flush=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- text


def _pairs(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _why(c: Comparison, result: Replay, sweep: _Sweep) -> str:
    s = result.settings
    decision = result.decisions[c.label]
    at = result.decided_at(c.label)
    look = result.looks[(at or len(result.looks)) - 1] if result.looks else None
    if look is None:
        have = {a: sum(1 for _, v in sweep.samples[a] if math.isfinite(v)) for a in (c.agent, c.base_agent)}
        return (f"no look yet: look 1 needs values of the first {s.n} seed(s) of each configuration "
                f"({', '.join(f'{a} has {n}' for a, n in have.items())})")  # fmt: skip
    m = len(look.seeds[c.agent])
    means = f"mean {look.means[c.agent]:.4g} vs {look.means[c.base_agent]:.4g} over {m} seed(s) each"
    if decision == CONTINUE:
        return f"open after look {look.index} of {s.max_looks} ({means})"
    if decision == "equal":
        return f"cap reached at look {look.index} of {s.max_looks}: no difference found ({means})"
    return f"decided at look {look.index} of {s.max_looks}: {decision} than the baseline ({means})"


def _decisions_text(comparisons: list[Comparison], result: Replay, sweep: _Sweep) -> str:
    looks = len(result.looks)
    lines = [f"[rlsweep] after {looks} look(s) of {result.settings.max_looks}:" if looks else "[rlsweep] no look yet:"]
    for c in comparisons:
        lines.append(f"  {c.label}: {result.decisions[c.label]}; {_why(c, result, sweep)}")
        lines.append(f"    {c.agent} vs {c.base_agent}")
    return "\n".join(lines)


def _batch_text(batch: dict[str, list[int]], sweep: _Sweep, look: int, dry_run: bool) -> str:
    verb = "would add" if dry_run else "adding"
    lines = [f"[rlsweep] {verb}, for look {look}:"]
    for agent, seeds in sorted(batch.items()):
        lines.append(f"  {agent}: seed(s) {', '.join(map(str, seeds))}")
    total = sum(len(s) for s in batch.values())
    untouched = sorted(set(sweep.configs) - set(batch))
    tail = f"; no seeds for {len(untouched)} decided configuration(s): {', '.join(untouched)}" if untouched else ""
    lines.append(f"[rlsweep] {total} run(s) in all{tail}" + ("; dry run: nothing was started" if dry_run else ""))
    return "\n".join(lines)


def _final_line(result: Replay) -> str:
    if result.finished:
        counts = [f"{d}={n}" for d in DECISIONS if (n := sum(v == d for v in result.decisions.values()))]
        return f"[rlsweep] every comparison is decided ({', '.join(counts)}); no seeds to add"
    return "[rlsweep] no seeds to add"


# ---------------------------------------------------------------------------------------------------- launching

_SUBMITTED = -1  # submitted to SLURM without waiting (hydra.launcher.wait=false)


def _launch_overrides(info: dict[str, Any]) -> list[str]:
    """The launcher part of the sweep's command line (sweep.json): ``hydra/launcher`` and ``hydra.launcher.*``,
    so that the new seeds start the way the sweep did. ``only`` is left out: ``only=failed`` would skip them."""
    try:
        words = shlex.split(str(info.get("command", "")))[1:]
    except ValueError:
        words = []
    keep = []
    for w in words:
        if w.startswith(("hydra/launcher=", "hydra.launcher.")) and not w.startswith("hydra.launcher.only="):
            keep.append(w)
    return keep


def _plan_batch(sweep: _Sweep, batch: dict[str, list[int]], launch_overrides: list[str]) -> Plan:
    """One plan with every seed of the batch: each configuration's recorded overrides with ``seed=<new seeds>``,
    planned (composed and checked) as ``python sweep.py -m`` would, in this sweep's directory."""
    from rlsweep.config import ConfigError
    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.plan import GROUPS, Plan, plan
    from rlsweep.record import RunRecord

    points = []
    planned: Plan | None = None
    sweep_name = ""
    where = "hydra.sweep.dir='" + str(sweep.dir).replace("\\", "\\\\").replace("'", "\\'") + "'"
    for agent, seeds in sorted(batch.items()):
        record = RunRecord.read(sweep.dir / sweep.templates[agent])
        sweep_name = sweep_name or record.sweep
        overrides = [o for o in record.overrides if not o.lstrip("+~").startswith(_NOT_CARRIED)]
        overrides.append("seed=" + ",".join(map(str, seeds)))
        try:
            p = plan(quote_group_values([*overrides, *launch_overrides, where], GROUPS), multirun=True)
        except ConfigError as e:
            raise BadInput(f"configuration={agent}: its new seeds do not plan ({e})") from None
        for point in p.points:
            if point.run_id != f"{agent}-s{point.seed}":
                raise BadInput(f"configuration={agent}: its seed {point.seed} would be named {point.run_id}, not "
                               f"{agent}-s{point.seed} like its other runs (an rlsweep whose naming changed); "
                               "allowed: the rlsweep version that launched the sweep")  # fmt: skip
        points.extend(p.points)
        planned = p
    assert planned is not None
    for i, point in enumerate(points):
        point.index = i
        # The sweep's own name, even if its directory was moved since (the plan takes the directory's name).
        point.config["sweep_name"] = sweep_name or planned.sweep_name
    return Plan(points, True, sweep_name or planned.sweep_name, sweep.dir, planned.launcher, planned.settings, False)


def _prepare(p: Plan) -> list[Point]:
    """Write the batch's configs and records into the sweep's ledger (refusing changed configs first, so that a
    refused batch leaves no trace in seeds.json either)."""
    from rlsweep.config import ConfigError
    from rlsweep.launching.points import prepare

    try:
        return prepare(p, p.launcher)
    except ConfigError as e:  # a changed training config of a seed to rerun: nothing started
        raise BadInput(str(e)) from None


def _launch(p: Plan, todo: list[Point]) -> int:
    """Run the prepared batch with the sweep's launcher: 0 all completed, 1 not, ``_SUBMITTED`` when SLURM was
    told not to wait. Like ``sweep.py``'s launch, except that sweep.json keeps the sweep's own command line
    (rerunning it resumes the sweep; rerunning rlsweep seeds resumes these)."""
    from rlsweep.launching.app import start
    from rlsweep.launching.ledger import Ledger

    if not start(p, todo):
        return _SUBMITTED
    ledger = Ledger(p.out_dir)
    done = all((r := ledger.get(pt.run_id)) is not None and r.status == "completed" for pt in p.points)
    return 0 if done else 1
