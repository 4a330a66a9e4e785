"""The tuner's loop: the arms of the grid, their trials as points of the search sweep, rungs as launches, and the
confirm runs on fresh seeds.

**Arms.** The grid typed (``motivation=none,rnd env=maze ...``) is planned as ``sweep.py -m`` would plan it; each
point is an arm, named by its run id without the seed (``ppo_rnd_a0-env_maze``).

**Trials are points.** Trial ``k`` of an arm is the point ``<arm>-t<k>-s<k+1>`` of the search sweep
(``sweeps/<name>/``): the arm's overrides, the sampled values, ``name=<arm>-t<k>``, ``seed=<k+1>`` (trial k of
every arm has the same seed), ``budget.total_steps=<rung budget>`` and ``resume=continue``. It is planned, checked,
prepared and started exactly as a point of ``sweep.py``: its own directory, record, lock, metrics, checkpoint and
W&B run, with the launcher and settings of the command line (``hydra/launcher=slurm`` included).

**Rungs are launches.** One round takes, in every arm, the live trials at the lowest rung not yet reported, and
launches them all together (the arms' trials side by side) to that rung's budget; a later rung continues each
trial's checkpoint (``resume=continue`` with a larger budget). Then each trial's value at the rung's end (the
report's rule: the mean over the last 10 % of the steps, :func:`rlsweep.analysis.stats.final_performance`) is
reported to its study, and the halving decides (:mod:`rlsweep.tuning.study`). A run that diverged is told FAIL
with its error as the reason, and the search goes on. Nothing is killed: a pruned trial is simply not launched
again.

**Batches.** ``tune.batch=B`` asks B trials of an arm at a time (trials ``kB .. kB+B-1`` are batch k); a batch goes
through every rung before the next one is asked, so TPE samples each batch knowing the earlier batches' values. Each
batch is its own round of halving (:class:`~rlsweep.tuning.study.RungPruner`): a rung keeps the best ``max(1, n //
reduction)`` of the ``n`` trials of the batch that reached it, whatever earlier batches scored, so the number kept,
and with it the steps spent, depends only on the counts.

**Waiting.** The tuner needs a rung's values before it can halve, so it waits for its trials:
``hydra.launcher.wait=false`` is refused (exit 2, before anything starts). To leave a tune running after logging
out, run ``rlsweep tune`` itself in tmux or screen, under nohup, or in a SLURM job of its own.

**Resuming.** Every step is recorded before the next one: a trial is asked (and so numbered, with its params) in
the study before its point exists, reported before it is decided, and told before the next rung is launched. A
tuner stopped anywhere (Ctrl-C, SIGKILL, a lost node) is resumed by rerunning its command: trials already told are
not run again; a trial asked and not told is launched again and its point resumes its checkpoint (a point already
at the rung's budget trains nothing); a batch whose asks were cut short is asked to its end before any of it is
launched. Only one tuner runs per sweep (its lock, ``<sweep>/.tune/``).

**Equal budgets.** Every arm gets the same trial count, the same seeds and the same rung budgets, and the halving
keeps a number of trials that depends only on how many reached the rung, so every arm spends the same steps unless
a trial fails. ``tune.json`` shows, per arm, every trial and the steps it trained, and the sum.

**Confirm.** Once every arm's search is over, each arm's best setting is trained on ``fresh_seeds`` seeds from 1000
(none a trial's) as the points ``<arm>-s<seed>`` of a separate sweep, ``<sweep>-confirm``: the only runs the
verdict reads (``rlsweep report <sweep>-confirm``). The tuned values are in each run's ``config.yaml`` and in
``tune.json``; the record's overrides are the arm's own, so the report compares the arms, not their values. The
confirm sweep holds a copy of ``tune.json`` (naming both sweeps), written before its runs start: the report of either
sweep reads the search from it (its "Tuning" section, :mod:`rlsweep.analysis.tuning`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsweep.tuning.space import BadSpace, TuneSpec, check_against_grid, is_server, redact

if TYPE_CHECKING:
    import optuna

    from rlsweep.launching.plan import Plan, Point

STATE_FILE = "tune.json"  # in the search sweep and its confirm sweep; rlsweep.analysis.tuning reads it
LOCK_DIR = ".tune"
CONFIRM_SUFFIX = "-confirm"
FIRST_FRESH_SEED = 1000
DIVERGED = "DivergenceError"  # how a diverged run's record error begins (rlsweep.launching.job.error_summary)


class Busy(RuntimeError):
    """Another tuner runs on the sweep, or some of its points run elsewhere (exit status 3, nothing started)."""


@dataclass
class Arm:
    name: str  # the arm's run id without its seed
    overrides: list[str]  # the grid's overrides that make it (no seed)
    label: str  # the swept values: motivation=rnd
    total_steps: int  # its own budget (the confirm runs' default)


@dataclass
class Setup:
    spec: TuneSpec
    arms: list[Arm]
    sweep_name: str
    sweep_dir: Path
    launch: list[str] = field(default_factory=list)  # hydra/launcher, hydra.launcher.*, hydra.searchpath
    searchpath: tuple[str, ...] = ()

    @property
    def confirm_dir(self) -> Path:
        return self.sweep_dir.with_name(self.sweep_dir.name + CONFIRM_SUFFIX)

    def trial_seed(self, number: int) -> int:
        return number + 1

    def fresh_seeds(self) -> list[int]:
        first = max(FIRST_FRESH_SEED, self.spec.trials + 1)
        return list(range(first, first + self.spec.fresh_seeds))


# ---------------------------------------------------------------------------------------------------- setup


def setup(grid: Sequence[str], spec: TuneSpec, launch: Sequence[str], sweep_dir: str | None) -> Setup:
    """Check the grid against the space, plan the arms, and plan each arm at the space's corners (every low bound or
    first choice, then every high bound or last choice), so that a setting the training config refuses in
    combination stops everything here, not in a trial hours later. :class:`BadSpace` on bad input."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from rlsweep.config import ConfigError
    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.plan import GROUPS, plan

    try:
        parsed = OverridesParser.create().parse_overrides(quote_group_values(list(grid), GROUPS))
    except HydraException as e:
        raise BadSpace(" ".join(str(e).split())) from None
    keys = {o.key_or_group: o.is_sweep_override() for o in parsed}
    check_against_grid(spec, keys)
    swept = [k for k, s in keys.items() if s]
    explicit = next((o.value() for o in parsed if o.key_or_group == "sweep_name"), None)
    grid = [g for g, o in zip(grid, parsed, strict=True) if o.key_or_group != "sweep_name"]
    digest = hashlib.sha1(" ".join(sorted([*grid, f"tune={spec.name}"])).encode()).hexdigest()[:8]
    name = str(explicit or f"tune-{digest}")
    where = Path(sweep_dir) if sweep_dir else Path("sweeps") / name
    try:
        arms_plan = plan(quote_group_values([*grid, *launch], GROUPS), multirun=True)
    except ConfigError as e:
        raise BadSpace(str(e)) from None
    if getattr(arms_plan.settings, "wait", True) is False:
        # Each round needs its trials' values before it can halve; a launcher that returns at once would leave every
        # rung to a rerun that finds its trials still queued. The tuner is the waiting process instead.
        raise BadSpace("hydra.launcher.wait=false: rlsweep tune reads each rung's values before it halves, so it "
                       "waits for its trials; allowed: hydra.launcher.wait=true (the default); to leave a tune "
                       "running, start rlsweep tune itself in tmux or screen, under nohup, or as a SLURM "
                       "job")  # fmt: skip
    arms = []
    for p in arms_plan.points:
        label = " ".join(o for o in p.overrides if o.partition("=")[0] in swept) or "(the one arm)"
        arms.append(Arm(p.run_id.removesuffix(f"-s{p.seed}"), list(p.overrides), label, p.total_steps))
    s = Setup(spec, arms, name, where.absolute(), list(launch), arms_plan.searchpath)
    for arm in arms:
        for corner in (0, -1):
            values = {q.key: q.values[corner] for q in spec.params}
            try:
                _plan_points(s, [(arm, values, [*s.launch], 1, s.spec.steps, f"{arm.name}-t0")], s.sweep_dir)
            except ConfigError as e:
                raise BadSpace(f"tune.space at {_values_text(values)} for arm {arm.label}: {e}") from None
    return s


def _plan_points(s: Setup, wanted: Sequence[tuple[Arm, dict[str, Any], list[str], int, int, str]], out: Path) -> Plan:
    """One plan of points (arm, tuned values, extra overrides, seed, budget, run name) in the sweep directory
    ``out``: each planned as ``sweep.py -m`` would plan its overrides, then gathered with the sweep's name."""
    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.plan import GROUPS, Plan, plan

    points: list[Point] = []
    planned = None
    where = "hydra.sweep.dir='" + str(out).replace("\\", "\\\\").replace("'", "\\'") + "'"
    for arm, values, extra, seed, steps, name in wanted:
        overrides = [*arm.overrides, *(f"{k}={_value(v)}" for k, v in values.items()), f"seed={seed}",
                     f"budget.total_steps={steps}", f"sweep_name={out.name}", *extra, where]  # fmt: skip
        if name:
            overrides.append(f"name={name}")
        planned = plan(quote_group_values(overrides, GROUPS), multirun=True)
        points.extend(planned.points)
    assert planned is not None
    for i, point in enumerate(points):
        point.index = i
    return Plan(points, True, out.name, out, planned.launcher, planned.settings, False, s.searchpath)


# ---------------------------------------------------------------------------------------------------- the loop


def tune(s: Setup) -> int:
    """Search every arm, then confirm; the exit status (0 done, 1 a run did not complete: rerun to resume)."""
    from rlsweep.tuning.study import storage_for

    # A server is opened first: one that does not answer is BadSpace before the sweep's folder exists. The files'
    # storages live in that folder, made under the lock.
    storage = storage_for(s.sweep_dir, s.spec.storage) if is_server(s.spec.storage) else None
    with only_one(s.sweep_dir):
        s.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = storage or storage_for(s.sweep_dir, s.spec.storage)
        code = search(s, storage)
        if code != 0:
            return code
        return confirm(s, storage)


def only_one(sweep_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the sweep's tune lock while the tuner runs, or raise :class:`Busy` naming who holds it."""
    from rlsweep.rundir.lock import exclusive

    return exclusive(sweep_dir / LOCK_DIR, lambda holder: Busy(
        f"another rlsweep tune runs on {sweep_dir.name} ({holder.describe()}); wait for it to end, then rerun"
    ))  # fmt: skip


def search(s: Setup, storage: optuna.storages.BaseStorage) -> int:
    """Rounds of rungs until every arm has told all its trials; 1 if a run did not complete (it resumes on rerun)."""
    from optuna.trial import TrialState

    from rlsweep.tuning.study import RUN_ID, SEED, distributions, live_trial, open_study, rung_of, set_attr

    spec, budgets, batch = s.spec, s.spec.budgets(), s.spec.batch_size()
    studies = {arm.name: open_study(storage, arm.name, spec) for arm in s.arms}
    print(f"[rlsweep] tune {s.sweep_name}: {len(s.arms)} arm(s) x {spec.trials} trial(s), rungs at {budgets} agent "
          f"steps (keep 1/{spec.reduction} per rung), metric {spec.metric} ({spec.direction}); in {s.sweep_dir}",
          flush=True)  # fmt: skip
    while True:
        work: list[tuple[Arm, int, dict[str, Any], int]] = []  # arm, trial number, params, rung
        for arm in s.arms:
            study = studies[arm.name]
            live = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
            asked = len(study.get_trials(deepcopy=False))
            if not live:
                more = min(batch, spec.trials - asked)
            elif asked % batch and not any(t.intermediate_values for t in live):
                # A tuner stopped between two asks of one batch (all asks come before the batch's launch, so none of
                # it has run): ask the rest now, so that the batch is halved as one, as the pruner numbers it.
                more = min(batch - asked % batch, spec.trials - asked)
            else:
                more = 0
            for _ in range(more):
                trial = study.ask(distributions(spec.params))
                # Recorded at once: the number decides the run id and seed, these attrs only say so.
                set_attr(study, trial.number, RUN_ID, _trial_run_id(s, arm, trial.number))
                set_attr(study, trial.number, SEED, s.trial_seed(trial.number))
            if more:
                live = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
            if not live:
                continue
            rung = min(rung_of(t, budgets) for t in live)
            for t in live:
                if RUN_ID not in t.user_attrs:  # a tuner stopped between its ask and these attrs
                    set_attr(study, t.number, RUN_ID, _trial_run_id(s, arm, t.number))
                    set_attr(study, t.number, SEED, s.trial_seed(t.number))
                if rung_of(t, budgets) == rung:
                    params = live_trial(study, t, spec.params).params  # fills a param a stopped ask left unsampled
                    work.append((arm, t.number, params, rung))
        if not work:
            break
        code = _run_round(s, studies, work)
        _write_state(s, studies)
        if code != 0:
            return code
    _write_state(s, studies)
    print(_budget_table(s, studies), flush=True)
    return 0


def _run_round(s: Setup, studies: dict[str, optuna.Study], work: list[tuple[Arm, int, dict[str, Any], int]]) -> int:
    """Launch the round's trials to their rungs' budgets, read their values, report and decide."""
    from rlsweep.launching.ledger import Ledger
    from rlsweep.tuning.study import STEPS, fail, report_rung, set_attr

    budgets = s.spec.budgets()
    wanted = [(arm, params, ["resume=continue", *s.launch], s.trial_seed(n), budgets[rung], f"{arm.name}-t{n}")
              for arm, n, params, rung in work]  # fmt: skip
    p = _plan_points(s, wanted, s.sweep_dir)
    rungs = sorted({rung for *_, rung in work})
    print(f"[rlsweep] rung {', '.join(str(r + 1) for r in rungs)} of {len(budgets)}: {len(work)} trial(s) to "
          f"{', '.join(str(budgets[r]) for r in rungs)} agent steps", flush=True)  # fmt: skip
    _start(p, _launcher(s))
    ledger = Ledger(s.sweep_dir)
    values: dict[tuple[str, int], dict[int, float]] = {}
    unfinished = []
    for (arm, n, _, rung), point in zip(work, p.points, strict=True):
        study = studies[arm.name]
        record = ledger.get(point.run_id)
        run_dir = p.run_dir(point)
        set_attr(study, n, STEPS, trained_steps(run_dir, record.global_step if record else 0))
        if record is not None and record.status == "completed" and record.global_step >= budgets[rung]:
            value = value_at(run_dir, s.spec.metric, record.global_step)
            if value is None:
                _no_metric(s, run_dir)
                fail(study, n, f"{s.spec.metric} not logged")
                continue
            values.setdefault((arm.name, rung), {})[n] = value
        elif record is not None and record.status == "failed" and (record.error or "").startswith(DIVERGED):
            print(f"[rlsweep] {point.run_id}: failed ({record.error}); told FAIL, the search goes on", flush=True)
            fail(study, n, str(record.error))
        else:
            unfinished.append(point.run_id)
    for (arm_name, rung), by_trial in values.items():
        decided = report_rung(studies[arm_name], by_trial, budgets, rung)
        shown = ", ".join(f"t{n}={by_trial[n]:.4g} {decided[n]}" for n in sorted(by_trial))
        print(f"[rlsweep] {arm_name} rung {rung + 1}: {shown}", flush=True)
    if unfinished:
        print(f"[rlsweep] {len(unfinished)} trial(s) did not complete ({', '.join(unfinished[:3])}"
              f"{' ...' if len(unfinished) > 3 else ''}); rerun the same rlsweep tune to resume them",
              flush=True)  # fmt: skip
        return 1
    return 0


def _start(p: Plan, launcher: str) -> bool:
    """Prepare and run the plan's points with its launcher (what ``sweep.py`` does for a sweep, ``sweep.json``
    included when anything runs); points some other process runs are refused first (:class:`Busy`): their values
    would be missing from the rung."""
    from rlsweep.config import ConfigError
    from rlsweep.launching.launcher import start
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.points import prepare, running_elsewhere

    busy = running_elsewhere([p.run_dir(pt) for pt in p.points])
    if busy:
        raise Busy(f"run={busy[0].name} is still running or queued ({len(busy)} run(s) in all); rerun once they have "
                   f"ended (rlsweep status {p.out_dir})")  # fmt: skip
    try:
        todo = prepare(p, p.launcher)
    except ConfigError as e:
        raise BadSpace(str(e)) from None
    if not todo:
        return True
    Ledger(p.out_dir).record_launch(launcher, len(p.points), p.searchpath)
    return start(p, todo)


def confirm(s: Setup, storage: optuna.storages.BaseStorage) -> int:
    """Each arm's best setting on fresh seeds, as the points of the confirm sweep; 0 when all completed."""
    from rlsweep.launching.ledger import Ledger
    from rlsweep.tuning.study import accounting, open_study

    chosen = {arm.name: accounting(open_study(storage, arm.name, s.spec))["best"] for arm in s.arms}
    missing = [a for a, best in chosen.items() if best is None]
    if missing:
        print(f"[rlsweep] no trial of {', '.join(missing)} completed (all pruned or failed: tune.json says why); "
              "nothing to confirm", flush=True)  # fmt: skip
        return 1
    seeds = s.fresh_seeds()
    keys = {q.key for q in s.spec.params}
    wanted = []
    for arm in s.arms:
        best = chosen[arm.name]
        assert best is not None
        params = dict(best["params"])
        wanted += [(arm, params, [*s.launch], seed, s.spec.confirm_steps or arm.total_steps, "") for seed in seeds]
    p = _plan_points(s, wanted, s.confirm_dir)
    for (arm, *_), point in zip(wanted, p.points, strict=True):
        # The tuned values are the arm's, found by the search: kept in config.yaml and tune.json, not as overrides,
        # so that the report's factors are the arms' (the values differ between arms and would confound them).
        point.overrides = [o for o in point.overrides if o.partition("=")[0].lstrip("+~") not in keys]
        point.run_id = f"{arm.name}-s{point.seed}"
    print(f"[rlsweep] confirm: each arm's chosen setting on fresh seeds {seeds} in {s.confirm_dir}", flush=True)
    studies = {arm.name: open_study(storage, arm.name, s.spec) for arm in s.arms}
    # The confirm sweep's link to its search, written before its runs start: its report finds the search from it.
    _write_state(s, studies, confirmed=False, to_confirm=True)
    _start(p, _launcher(s))
    ledger = Ledger(s.confirm_dir)
    done = all((r := ledger.get(pt.run_id)) is not None and r.status == "completed" for pt in p.points)
    _write_state(s, studies, confirmed=done, to_confirm=True)
    if not done:
        print("[rlsweep] some confirm runs did not complete; rerun the same rlsweep tune to resume them", flush=True)
        return 1
    print(f"[rlsweep] done; the answer, from the confirm runs only: rlsweep report {s.confirm_dir}", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------- reading


def value_at(run_dir: Path, metric: str, end: int) -> float | None:
    """The metric's value at step ``end`` as the report takes a final value: the mean over the last 10 % of the
    steps up to ``end`` (a later rung's lines, if any, are not read); None if the run never logged it."""
    from rlsweep.analysis.stats import final_performance
    from rlsweep.rundir.metrics import METRICS_FILE, read_metrics

    rows = [r for r in read_metrics(run_dir / METRICS_FILE, require="global_step") if int(r["global_step"]) <= end]
    pairs = [(int(r["global_step"]), float(r[metric])) for r in rows if r.get(metric) is not None]
    if not pairs:
        return None
    value = final_performance([a for a, _ in pairs], [b for _, b in pairs], last_step=max(a for a, _ in pairs))
    return value if math.isfinite(value) else None


def trained_steps(run_dir: Path, checkpointed: int) -> int:
    """The agent steps a trial trained: its last logged step (a diverged run trained past its last checkpoint)."""
    from rlsweep.rundir.metrics import METRICS_FILE, read_metrics

    last = read_metrics(run_dir / METRICS_FILE, require="global_step", last=1)
    return max(checkpointed, int(last[0]["global_step"]) if last else 0)


def _no_metric(s: Setup, run_dir: Path) -> None:
    """A completed trial without the metric: a typo in the metric, not a bad trial; stop before the search is
    wasted (the trial is not told: after fixing tune.metric, a rerun reads it again)."""
    from rlsweep.rundir.metrics import METRICS_FILE, read_metrics

    rows = read_metrics(run_dir / METRICS_FILE, require="global_step", last=1)
    if rows:
        names = sorted(k for k in rows[0] if "/" in k)
        raise BadSpace(f"tune.metric={s.spec.metric}: not logged by the trials; allowed: {', '.join(names)}")


# ---------------------------------------------------------------------------------------------------- tune.json


def _write_state(s: Setup, studies: dict[str, optuna.Study], confirmed: bool = False, to_confirm: bool = False) -> None:
    """``tune.json`` in the search sweep; with ``to_confirm``, the same file in the confirm sweep too (both name both
    directories, so that the report of either finds the search: :mod:`rlsweep.analysis.tuning`)."""
    from rlsweep.rundir.record import write_json_atomic
    from rlsweep.tuning.study import accounting

    arms = {a.name: {"label": a.label, "overrides": a.overrides, **accounting(studies[a.name])} for a in s.arms}
    spent = {a["spent_steps"] for a in arms.values()}
    counts = {len(a["trials"]) for a in arms.values()}
    state = {
        "updated": time.time(),
        # tune.storage without a password typed into its URL: tune.json is read by the report and copied around.
        "spec": {k: redact(v) if k == "storage" else v for k, v in dataclasses.asdict(s.spec).items() if k != "params"},
        "space": {q.key: {q.kind: list(q.values)} for q in s.spec.params},
        "budgets": s.spec.budgets(),
        "trial_seeds": [s.trial_seed(n) for n in range(s.spec.trials)],
        "fresh_seeds": s.fresh_seeds(),
        "search_dir": str(s.sweep_dir),
        "confirm_dir": str(s.confirm_dir),
        "confirmed": confirmed,
        "equal_budgets": len(spent) == 1 and len(counts) == 1,
        "arms": arms,
    }
    write_json_atomic(s.sweep_dir / STATE_FILE, state)
    if to_confirm:
        s.confirm_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(s.confirm_dir / STATE_FILE, state)


def _budget_table(s: Setup, studies: dict[str, optuna.Study]) -> str:
    from rlsweep.tuning.study import accounting

    rows = [["arm", "trials", "complete", "pruned", "failed", "steps spent", "best", "chosen"]]
    for arm in s.arms:
        a = accounting(studies[arm.name])
        best = a["best"]
        rows.append([arm.label, str(len(a["trials"])), str(a["states"]["complete"]), str(a["states"]["pruned"]),
                     str(a["states"]["fail"]), str(a["spent_steps"]), f"{best['value']:.4g}" if best else "-",
                     _values_text(best["params"]) if best else "-"])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    spent = {r[5] for r in rows[1:]}
    lines.append("[rlsweep] equal budgets: " + ("yes, " + rows[1][5] + " agent steps per arm" if len(spent) == 1 else
                 "NO (a trial failed: tune.json says which); compare with care"))  # fmt: skip
    return "\n".join(lines)


def _trial_run_id(s: Setup, arm: Arm, number: int) -> str:
    return f"{arm.name}-t{number}-s{s.trial_seed(number)}"


def _launcher(s: Setup) -> str:
    value = next((o.partition("=")[2] for o in s.launch if o.startswith("hydra/launcher=")), "local")
    return value or "local"


def _value(v: Any) -> str:
    """A sampled value as a Hydra override's value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _values_text(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
