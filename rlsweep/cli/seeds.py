"""``rlsweep seeds <sweep_dir>``: more seeds only where a comparison is not decided yet, until it is or a cap is hit.

This module owns the command: reading a launched sweep, writing the state file ``<sweep_dir>/seeds.json``, and
launching the seeds a look needs as new points of the same sweep. The statistics (which comparisons, AdaStop, the
replay of the looks) and the reading of ``seeds.json`` are :mod:`rlsweep.analysis.sequential`'s.

**Pre-registration.** A sequential test holds its error rate only if its settings (n, K, alpha, the metric, the
baselines, hence the comparisons, and the permutations) were fixed before its first look. So they are fixed the
first time anything is computed under them on the sweep's values, dry runs included: ``seeds.json`` records every
test ever run on the sweep, numbered, with its settings, comparisons, every look (seeds, means, decisions) and the
batches launched. With no options ``rlsweep seeds`` continues the latest test (the one run last); options that
differ from it begin a new test, and both stay in ``seeds.json`` and in the report (which takes each comparison's
verdict from the earliest test that covers it). A recorded look is binding: if the values now decide it otherwise
(a run's value changed since), the recorded decision stands, a warning names the look and comparison, and the test
records that its data changed after that look.

One round is: load the sweep, take each run's final performance (completed runs only), replay every look the
values allow, record them in ``seeds.json``, and give the configurations of the comparisons still open the seeds
of the next look. Those seeds become points of the sweep exactly as a rerun of its own command would make them:
each configuration's recorded overrides with the new ``seed=``, planned and checked by
:mod:`rlsweep.launching.plan`, prepared by :func:`rlsweep.launching.points.prepare` into the same ledger, named
the same way, and started by the sweep's launcher with the settings of its command line (``sweep.json``).
Rounds repeat until every comparison is decided or the cap (``n * max_looks`` seeds per configuration) is
reached; ``--once`` stops after one batch. The local launcher waits for its runs, and so does SLURM with
``hydra.launcher.wait=true`` (its default, progress tables as for the sweep); a sweep launched with
``wait=false`` submits and returns, and rerunning ``rlsweep seeds`` once the jobs have ended takes the next
look (while they run, it refuses: their values would be missing from the look). ``--dry-run`` launches nothing
and also plans: how many seeds per configuration 80 % power would take for each comparison still open.

One ``rlsweep seeds`` at a time per sweep: it holds the sweep's seeds lock (``<sweep_dir>/.seeds/``, a lock of
:mod:`rlsweep.rundir.lock`: pid and start time on its host, a heartbeat from another) from before it reads
``seeds.json``
until it exits, dry runs included, since two would record their looks and batches over each other's. A second one
refuses at once, naming the first.

Exit status: 0 when the round(s) ran (or, ``--dry-run``, were shown), 1 when a launched seed did not complete
(rerun to resume it), 2 for bad input (nothing started), 3 when another ``rlsweep seeds`` runs on the sweep
(nothing started), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
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
    ADASTOP_013,
    CONTINUE,
    DECISIONS,
    METHOD,
    PERMUTATION_SEED,
    PERMUTATIONS,
    STATE_FILE,
    Comparison,
    Replay,
    Settings,
    build_comparisons,
    next_seeds,
    read_tests,
    recorded_test,
    replay,
    status_of,
)

if TYPE_CHECKING:
    from rlsweep.analysis.load import SweepData
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.plan import Plan, Point

DEFAULT_ALPHA = 0.05
DEFAULT_MAX_LOOKS = 5  # AdaStop's default K
_SEED_SUFFIX = re.compile(r"^(?P<stem>.+)-s(?P<seed>-?\d+)$")
# Overrides of a configuration's record that say how to launch, not what: a new seed starts afresh, whatever the
# sweep's command said about resuming (resume=restart would set a rerun seed's progress aside).
_NOT_CARRIED = ("seed=", "resume=", "dry_run=", "+seed=")
# The settings a user chooses, as seeds.json keys and as options.
_OPTIONS = {"n": "--n", "max_looks": "--max-looks", "alpha": "--alpha"}


class BadInput(ValueError):
    """One line for the user: the key, the value and what is allowed (exit status 2, nothing started)."""


class Busy(RuntimeError):
    """Another ``rlsweep seeds`` runs on the sweep (exit status 3, nothing started)."""


SEEDS_LOCK_DIR = ".seeds"  # in the sweep directory: the lock one rlsweep seeds holds while it runs


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
    except Busy as e:
        print(f"rlsweep seeds: {e}", file=sys.stderr)
        return 3
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
        help="print each comparison's decision and why, the seeds it would add and the seeds 80 %% power would take; "
        "launch nothing (the test and its looks are recorded: its settings are fixed from now on)",
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
    with _only_one(sweep_dir):
        return _rounds(args, sweep_dir, ledger)


def _only_one(sweep_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the sweep's seeds lock while this command runs, or raise :class:`Busy` naming who holds it."""
    from rlsweep.rundir.lock import exclusive

    return exclusive(sweep_dir / SEEDS_LOCK_DIR, lambda holder: Busy(
        f"another rlsweep seeds runs on {sweep_dir.name} ({holder.describe()}); wait for it to end (its runs: "
        f"rlsweep status {sweep_dir}), then rerun"))  # fmt: skip


def _rounds(args: argparse.Namespace, sweep_dir: Path, ledger: Ledger) -> int:
    info = ledger.launch_info()
    tests = _read_tests(sweep_dir)
    latest = _latest(tests)
    sweep = _read_sweep(sweep_dir, ledger, info, args.metric or (latest["metric"] if latest else None))
    baselines = _baselines(args.baseline, sweep, latest)
    comparisons = build_comparisons(sweep.configs, sweep.factors, baselines)
    if not comparisons:
        raise BadInput(f"sweep_dir={args.sweep_dir}: no two configurations differ in one factor only (factors "
                       f"{', '.join(sweep.factors)}); allowed: a sweep with a configuration at each of two levels "
                       "of a factor, the other factors equal")  # fmt: skip
    settings = _settings(args, comparisons, sweep, latest)
    test, note = _test_for(tests, latest, sweep.metric, settings, baselines, comparisons)
    launch_overrides = _launch_overrides(info)
    header = (
        f"[rlsweep] seeds: {sweep.dir.name}, test {test['number']}, metric {sweep.metric}; AdaStop (two-sided) over "
        f"{len(comparisons)} comparison(s), family-wise alpha={settings.alpha:g}, n={settings.n} seed(s) per "
        f"configuration per look, at most {settings.max_looks} look(s) ({settings.n * settings.max_looks} seeds per "
        "configuration)"
    )
    print(header, flush=True)
    print(note, flush=True)
    batches = 0
    while True:
        result = replay(comparisons, sweep.samples, settings, [lk["decisions"] for lk in test["looks"]])
        _note_changes(test, result)
        print(_decisions_text(comparisons, result, sweep), flush=True)
        if args.dry_run and not result.finished:
            print(_power_text(comparisons, result, sweep), flush=True)
        _record(test, result)
        _save(sweep_dir, tests)
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
        test.setdefault("batches", []).append(
            {"for_look": len(result.looks) + 1, "time": time.time(), "runs": [p.run_id for p in batch_plan.points]}
        )
        _save(sweep_dir, tests)
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
    from rlsweep.launching.launcher import reconcile
    from rlsweep.launching.points import running_elsewhere

    reconcile(ledger)
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


def _baselines(given: list[str], sweep: _Sweep, latest: dict[str, Any] | None) -> dict[str, str]:
    """Every factor's baseline level: the one given, else the latest test's, else the first level sorted."""
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
    before = recorded_test(latest).baselines if latest else {}
    effective = {}
    for factor in sweep.factors:
        levels = sorted({c[factor] for c in sweep.configs.values()})
        carried = before.get(factor) if before.get(factor) in levels else None
        effective[factor] = out.get(factor) or carried or levels[0]
    return effective


def _settings(
    args: argparse.Namespace, comparisons: list[Comparison], sweep: _Sweep, latest: dict[str, Any] | None
) -> Settings:
    """The settings asked for: each option given, else the latest test's (so that no option continues it), else the
    defaults, n defaulting to the sweep's seeds per configuration (the fewest among the compared ones)."""
    before = dict(latest["settings"]) if latest else {}
    agents = {a for c in comparisons for a in (c.agent, c.base_agent)}
    defaults = {
        "n": min(len(sweep.samples[a]) for a in agents),
        "max_looks": DEFAULT_MAX_LOOKS,
        "alpha": DEFAULT_ALPHA,
    }
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else before.get(key, defaults[key])
              for key in _OPTIONS}  # fmt: skip
    s = Settings(int(chosen["n"]), int(chosen["max_looks"]), float(chosen["alpha"]),
                 int(before.get("permutations", PERMUTATIONS)),
                 int(before.get("permutation_seed", PERMUTATION_SEED)))  # fmt: skip
    try:
        s.check()
    except ValueError as e:
        key = str(e).split()[0]
        value = getattr(s, key)
        raise BadInput(f"--{key.replace('_', '-')}={value}: {e}") from None
    return s


# ---------------------------------------------------------------------------------------------------- tests


def _read_tests(sweep_dir: Path) -> list[dict[str, Any]]:
    try:
        return read_tests(sweep_dir)
    except ValueError as e:
        # read_tests' message begins with the file's path: it reads as seeds.json=<path> ...
        raise BadInput(f"{STATE_FILE}={e}; allowed: the file rlsweep seeds wrote (it is the record of every test run "
                       "on this sweep: restore it from a copy)") from None  # fmt: skip


def _latest(tests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The test run last (the highest number among those updated at the same time)."""
    return max(tests, key=lambda t: (t.get("updated") or 0.0, int(t["number"])), default=None)


def _test_for(
    tests: list[dict[str, Any]],
    latest: dict[str, Any] | None,
    metric: str,
    settings: Settings,
    baselines: dict[str, str],
    comparisons: list[Comparison],
) -> tuple[dict[str, Any], str]:
    """The recorded test these settings continue (the latest, or an earlier one with exactly these settings), or a
    new one appended to ``tests``; and the line that says which."""
    fixed = {"test": METHOD, "metric": metric, "settings": asdict(settings),
             "comparisons": [c.record() for c in comparisons]}  # fmt: skip
    same = [t for t in tests if all(t.get(k) == v for k, v in fixed.items())]
    if latest is not None and latest in same:
        return latest, f"[rlsweep] continuing test {latest['number']} ({STATE_FILE}: its settings are fixed)"
    if same:
        t = max(same, key=lambda t: int(t["number"]))
        return t, f"[rlsweep] continuing test {t['number']}: the settings given are its settings ({STATE_FILE})"
    now = time.time()
    number = max((int(t["number"]) for t in tests), default=0) + 1
    test: dict[str, Any] = {
        "number": number,
        **fixed,
        "baselines": baselines,
        "looks": [],
        "decisions": {c.label: CONTINUE for c in comparisons},
        "status": "open",
        "batches": [],
        "data_changed": [],
        "created": now,
        "updated": now,
    }
    tests.append(test)
    if latest is None:
        return test, (f"[rlsweep] test {number} begins: its settings are fixed from now on ({STATE_FILE}); other "
                      "settings begin a new test")  # fmt: skip
    return test, (f"[rlsweep] test {number} begins: {_differences(latest, test)}; test {latest['number']} and its "
                  f"looks stay in {STATE_FILE} and in the report")  # fmt: skip


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between the latest test and a new one, in words: ``--alpha 0.1 differs from test 1's 0.05``."""
    n = old["number"]
    changed: list[tuple[str, Any, Any]] = []
    if old["metric"] != new["metric"]:
        changed.append(("--metric", new["metric"], old["metric"]))
    for key, flag in _OPTIONS.items():
        if old["settings"].get(key) != new["settings"][key]:
            changed.append((flag, new["settings"][key], old["settings"].get(key)))
    was = recorded_test(old).baselines
    moved = {f: (level, was[f]) for f, level in new["baselines"].items() if f in was and was[f] != level}
    if moved:
        changed.append(("--baseline", ",".join(f"{f}={a}" for f, (a, _) in moved.items()),
                        ",".join(f"{f}={b}" for f, (_, b) in moved.items())))  # fmt: skip
    for key in ("permutations", "permutation_seed"):
        if old["settings"].get(key) != new["settings"][key]:
            changed.append((key.replace("_", " "), new["settings"][key], old["settings"].get(key)))
    parts = [f"{flag} {a} differs from test {n}'s {b}" if i == 0 else f"{flag} {a} from its {b}"
             for i, (flag, a, b) in enumerate(changed)]  # fmt: skip
    if old.get("test") == ADASTOP_013:
        parts.insert(0, f"test {n} was run by adastop 0.1.3, whose boundary is one-sided (about twice its alpha)")
    elif old.get("test") != new["test"]:
        parts.insert(0, f"test {n} was run by {old.get('test')}")
    if not parts:
        before = [c["label"] for c in old["comparisons"]]
        now = [c["label"] for c in new["comparisons"]]
        added, gone = [x for x in now if x not in before], [x for x in before if x not in now]
        which = f"{added[0]} is new" if added else f"{gone[0]} is gone" if gone else "their configurations or order"
        parts.append(f"the sweep's comparisons differ from test {n}'s ({which})")
    return ", ".join(parts)


def _note_changes(test: dict[str, Any], result: Replay) -> None:
    """Recorded looks are binding: where the values now decide a look otherwise, or give it other means (a run's
    value changed since, say a run continued under a larger budget), warn, and record it once in the test."""
    events: list[dict[str, Any]] = test.setdefault("data_changed", [])
    seen = [{k: v for k, v in e.items() if k != "time"} for e in events]
    found: list[dict[str, Any]] = []
    for ch in result.changed:
        print(f"[rlsweep] warning: test {test['number']}, look {ch.look}: {ch.comparison} now replays as "
              f"{ch.replayed}, recorded {ch.recorded} in {STATE_FILE}: a run's value changed since; the recorded "
              "decision stands", file=sys.stderr, flush=True)  # fmt: skip
        found.append({"look": ch.look, "comparison": ch.comparison, "recorded": ch.recorded, "replayed": ch.replayed})
    for old, new in zip(test["looks"], result.looks, strict=False):
        moved = {a: (m, new.means[a]) for a, m in old.get("means", {}).items() if a in new.means and new.means[a] != m}
        if moved:
            print(f"[rlsweep] warning: test {test['number']}, look {new.index}: the means of "
                  f"{', '.join(f'{a} ({m:.6g} now {x:.6g})' for a, (m, x) in moved.items())} changed since it was "
                  f"recorded in {STATE_FILE}; its recorded decisions stand", file=sys.stderr, flush=True)  # fmt: skip
        found += [{"look": new.index, "configuration": a, "recorded_mean": m, "mean": x} for a, (m, x) in moved.items()]
    if len(result.looks) < len(test["looks"]):
        print(f"[rlsweep] warning: test {test['number']}, look {len(result.looks) + 1} is recorded in {STATE_FILE} "
              f"but cannot be replayed now: {_pairs(result.waiting)} lack values; its recorded decisions stand",
              file=sys.stderr, flush=True)  # fmt: skip
    events += [{**e, "time": time.time()} for e in found if e not in seen]


def _record(test: dict[str, Any], result: Replay) -> None:
    """Append the looks taken since the test was last recorded; the recorded ones stay as they were."""
    test["looks"] = list(test["looks"]) + [asdict(look) for look in result.looks[len(test["looks"]) :]]
    if test["looks"]:
        test["decisions"] = dict(test["looks"][-1]["decisions"])
    test["status"] = status_of(test["decisions"])
    test["updated"] = time.time()


def _save(sweep_dir: Path, tests: list[dict[str, Any]]) -> None:
    from rlsweep.rundir.record import write_json_atomic

    write_json_atomic(sweep_dir / STATE_FILE, {"tests": sorted(tests, key=lambda t: int(t["number"]))})


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


def _power_text(comparisons: list[Comparison], result: Replay, sweep: _Sweep) -> str:
    """For each comparison still open: the seeds per configuration that 80 % power would take, at the difference
    and spread seen so far and over the difference's 95 % Welch interval (how uncertain that plan is): the plan the
    report prints for an open comparison (:func:`rlsweep.analysis.verdicts.seed_plan`)."""
    from rlsweep.analysis.verdicts import pooled_sd, seed_plan, welch_interval

    s = result.settings
    still = [c for c in comparisons if result.decisions[c.label] == CONTINUE]
    # Each comparison's level in the test (alpha / m, Bonferroni over all m comparisons): a fixed-sample plan at it.
    # AdaStop spends that level over its looks, so it may take a few seeds more than planned.
    level = s.alpha / len(comparisons)
    lines = [f"[rlsweep] seeds per configuration, from every value so far (at alpha/{len(comparisons)}, each "
             f"comparison's level in this test); the cap is {s.n * s.max_looks}:"]  # fmt: skip
    for c in still:
        x, y = ([v for _, v in sweep.samples.get(a, ()) if math.isfinite(v)] for a in (c.agent, c.base_agent))
        if len(x) < 2 or len(y) < 2:
            lines.append(f"  {c.label}: needs 2 values per configuration for a spread (has {len(x)} and {len(y)})")
            continue
        low, high = welch_interval([(x, y)])
        sd = pooled_sd([x, y])
        plan = seed_plan(sum(x) / len(x) - sum(y) / len(y), sd, low, high, level)
        lines.append(f"  {c.label}: " + (plan.text() if plan else "no difference seen: no plan"))
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
    """The launcher part of the sweep's command line (sweep.json): ``hydra/launcher`` and ``hydra.launcher.*``, and
    its config folders, so that the new seeds are planned and started the way the sweep's were. ``only`` is left
    out: ``only=failed`` would skip them."""
    try:
        words = shlex.split(str(info.get("command", "")))[1:]
    except ValueError:
        words = []
    keep = []
    for w in words:
        if w.startswith(("hydra/launcher=", "hydra.launcher.")) and not w.startswith("hydra.launcher.only="):
            keep.append(w)
    if info.get("searchpath"):  # the user's config folders (--config-dir), where the sweep's options came from
        from rlsweep.launching.plan import searchpath_override

        keep.append(searchpath_override([str(f) for f in info["searchpath"]]))
    return keep


def _plan_batch(sweep: _Sweep, batch: dict[str, list[int]], launch_overrides: list[str]) -> Plan:
    """One plan with every seed of the batch: each configuration's recorded overrides with ``seed=<new seeds>``,
    planned (composed and checked) as ``python sweep.py -m`` would, in this sweep's directory."""
    from rlsweep.config import ConfigError
    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.plan import GROUPS, Plan, plan
    from rlsweep.rundir.record import RunRecord

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
    from rlsweep.launching.launcher import start
    from rlsweep.launching.ledger import Ledger

    if not start(p, todo):
        return _SUBMITTED
    ledger = Ledger(p.out_dir)
    done = all((r := ledger.get(pt.run_id)) is not None and r.status == "completed" for pt in p.points)
    return 0 if done else 1
