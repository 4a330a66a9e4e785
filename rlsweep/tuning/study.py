"""Optuna's side of ``rlsweep tune``: where the studies live, how a rung's values decide who goes on, and what a study
says about an arm's budget.

**Storage.** One study per arm, all in one file in the search sweep's directory: ``tune.journal`` (Optuna's
``JournalStorage`` on a ``JournalFileBackend``, append-only with a lock file, safe on a shared filesystem where
SLURM jobs and the tuner meet) or, with ``tune.storage=sqlite``, ``tune.db``. Everything the tuner needs to resume is
in it: each trial's number (its run id is ``<arm>-t<number>``), its params, the values reported at each rung, and
its state once told; and, in user attrs, its run id, its seed and the steps it trained.

Or, with ``tune.storage=postgresql://user[:password]@host[:port]/database``, on a PostgreSQL server
(:class:`ServerStorage`, Optuna's ``RDBStorage``). A server is shared by sweeps, so a study there is named
``<sweep>/<arm>`` (the sweep directory's name) and records the sweep directory it belongs to: a sweep of the same
name elsewhere is refused rather than mixed into it. A server that does not answer is one :class:`BadSpace` line
naming the URL without its password, before any trial is asked.

**Halving.** A rung is one launch: every live trial of the arm trains to the rung's budget, and only then are the
values known, all at once. Optuna's ``SuccessiveHalvingPruner`` is asynchronous (ASHA): it decides each trial when
it reports, against the trials that reported that rung before it, so the first trial of a rung always goes on and
the outcome depends on the order of the calls. :class:`RungPruner` is the synchronous rule for rungs that end
together: every value of the rung is reported first (:func:`report_rung`), then each trial asks ``should_prune()``
and goes on if it is among the best ``max(1, n // reduction)`` of the ``n`` trials that reached that rung (ties by
trial number). The number kept depends only on ``n``, so arms with the same trial count spend the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from rlsweep.tuning.space import Param, TuneSpec

JOURNAL_FILE = "tune.journal"
SQLITE_FILE = "tune.db"
# A server study's user attr: the sweep directory that owns it (ServerStorage).
SWEEP_DIR = "rlsweep_sweep_dir"
# Seconds to wait for a server that does not answer (libpq waits for TCP's own timeout, minutes, without one).
CONNECT_TIMEOUT = 10
# The advisory lock (any fixed number) that lets one tuner at a time create Optuna's tables in an empty database.
INIT_LOCK = 0x726C7377
# Trial user attrs: what rlsweep keeps of a trial beside Optuna's own record.
RUN_ID, SEED, STEPS, REASON = "run_id", "seed", "steps", "reason"


class RungPruner(BasePruner):
    """Synchronous successive halving at fixed rung budgets (module docstring): prune a trial whose value at a rung
    (not the last) is not among the best ``max(1, n // reduction)`` of the ``n`` values reported at that rung by the
    trials of its batch (trials ``kB .. kB+B-1`` with ``tune.batch=B``; every trial with ``batch=0``). Within the
    batch: ranked against earlier batches too, a trial would go on only where it beat them, and the steps an arm
    spends would depend on its values rather than on its counts alone."""

    def __init__(self, budgets: Sequence[int], reduction: int, batch: int = 0) -> None:
        self.budgets = list(budgets)
        self.reduction = reduction
        self.batch = batch

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.budgets[:-1]:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        first, end = (trial.number - trial.number % self.batch, trial.number - trial.number % self.batch + self.batch) \
            if self.batch else (0, math.inf)  # fmt: skip
        peers = [(t.intermediate_values[step], t.number) for t in study.get_trials(deepcopy=False)
                 if first <= t.number < end and step in t.intermediate_values
                 and math.isfinite(t.intermediate_values[step])]  # fmt: skip
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        ranked = sorted(peers, key=lambda p: (sign * p[0], p[1]))
        keep = {number for _, number in ranked[: max(1, len(ranked) // self.reduction)]}
        return trial.number not in keep


class ServerStorage(optuna.storages.RDBStorage):
    """Optuna's ``RDBStorage`` on a database server that many sweeps share; it knows its sweep, whose studies are
    named ``<sweep>/<arm>`` (:func:`open_study`), and its URL as shown (no password)."""

    def __init__(self, url: str, sweep_dir: Path, engine_kwargs: dict[str, Any], shown: str) -> None:
        self.sweep_dir = Path(sweep_dir).resolve()
        self.shown = shown
        # No heartbeat: it serves study.optimize's workers, and would fail as stale the running trials of a stopped
        # tuner, which the next tuner resumes.
        super().__init__(url, engine_kwargs=engine_kwargs)

    def study_name(self, arm: str) -> str:
        return f"{self.sweep_dir.name}/{arm}"


def storage_for(sweep_dir: Path, kind: str) -> optuna.storages.BaseStorage:
    """The studies' storage of ``sweep_dir``: a journal file (default) or SQLite in it, or a PostgreSQL server."""
    from rlsweep.tuning.space import check_storage, is_server

    check_storage(kind)
    if is_server(kind):
        return server_storage(kind, sweep_dir)
    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{Path(sweep_dir).absolute() / SQLITE_FILE}")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(Path(sweep_dir).absolute() / JOURNAL_FILE)))


def server_storage(url: str, sweep_dir: Path) -> ServerStorage:
    """The sweep's studies on the PostgreSQL server of ``url``, or :class:`BadSpace` in one line if the driver is
    missing or the server does not answer or refuses (the URL shown without its password)."""
    import sqlalchemy

    from rlsweep.tuning.space import BadSpace, redact

    shown = redact(url)
    try:
        import psycopg  # noqa: F401  (SQLAlchemy's driver for postgresql://, imported only when it connects)
    except ImportError:
        raise BadSpace(f"tune.storage={shown}: no PostgreSQL driver (psycopg) in this Python; allowed: pip install "
                       "'rlsweep[tune-server]', or tune.storage=journal") from None  # fmt: skip
    url = "postgresql+psycopg://" + url.partition("://")[2]  # SQLAlchemy's plain postgresql:// may mean psycopg2
    parsed = sqlalchemy.make_url(url)
    connect = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    # pool_pre_ping: a rung may take hours; a pooled connection the server or a firewall dropped meanwhile is
    # replaced instead of failing the tuner's next write.
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True, "connect_args": connect}
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as conn:
            # Optuna creates its tables and stamps their version on first use, which two tuners starting together
            # on an empty database would do twice (a duplicate key): the first holds this lock until it is done.
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": INIT_LOCK})
            storage = ServerStorage(url, sweep_dir, engine_kwargs, shown)
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as e:  # RuntimeError: Optuna's schema version check
        reason = " ".join(str(getattr(e, "orig", None) or e).split())
        if parsed.password:
            reason = reason.replace(parsed.password, "***")
        raise BadSpace(f"tune.storage={shown}: the server refused or did not answer ({reason}); allowed: a "
                       "PostgreSQL server that answers at that URL (launchers/postgres-local.sh start for a local "
                       "one)") from None  # fmt: skip
    finally:
        engine.dispose()
    return storage


def open_study(storage: optuna.storages.BaseStorage, arm: str, spec: TuneSpec) -> optuna.Study:
    """The arm's study, created on first use. The sampler's seed takes in how many trials the study has: a resumed
    tuner then samples on from where it stopped, not the first trials' params again.

    On a server (:class:`ServerStorage`) the study is ``<sweep>/<arm>`` and belongs to the sweep directory that
    created it: opened from another directory (another sweep of the same name) it is refused, not shared."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = optuna.study.StudyDirection[spec.direction.upper()]
    name = storage.study_name(arm) if isinstance(storage, ServerStorage) else arm
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True)
    if isinstance(storage, ServerStorage):
        owner = study.user_attrs.get(SWEEP_DIR)
        if owner is None:
            study.set_user_attr(SWEEP_DIR, str(storage.sweep_dir))
        elif owner != str(storage.sweep_dir):
            from rlsweep.tuning.space import BadSpace

            raise BadSpace(f"tune.storage={storage.shown}: its study {name} belongs to the sweep in {owner}, not "
                           f"{storage.sweep_dir} (one name, two sweeps: their trials would mix); allowed: a "
                           "sweep_name that no other sweep on this server has")  # fmt: skip
    seed = spec.sampler_seed * 1_000_003 + _stable_hash(arm) + len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed % 2**32)
    study.pruner = RungPruner(spec.budgets(), spec.reduction, spec.batch)
    return study


def distributions(params: Sequence[Param]) -> dict[str, optuna.distributions.BaseDistribution]:
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in params:
        if p.kind == "choice":
            out[p.key] = optuna.distributions.CategoricalDistribution(list(p.values))
        elif p.kind == "int":
            out[p.key] = optuna.distributions.IntDistribution(int(p.values[0]), int(p.values[1]))
        else:
            out[p.key] = optuna.distributions.FloatDistribution(float(p.values[0]), float(p.values[1]),
                                                                log=p.kind == "log_uniform")  # fmt: skip
    return out


def live_trial(study: optuna.Study, frozen: FrozenTrial, params: Sequence[Param]) -> optuna.Trial:
    """A trial asked earlier and not told yet (a resumed tuner), as a :class:`optuna.Trial` with all its params: a
    param the earlier tuner had not sampled yet when it stopped is sampled now, the others are read back."""
    trial = optuna.Trial(study, frozen._trial_id)
    for key, dist in distributions(params).items():
        trial._suggest(key, dist)
    return trial


def rung_of(frozen: FrozenTrial, budgets: Sequence[int]) -> int:
    """The next rung a live trial trains to: the first whose budget it has no value for yet."""
    return next((r for r, b in enumerate(budgets) if b not in frozen.intermediate_values), len(budgets) - 1)


def report_rung(study: optuna.Study, values: Mapping[int, float], budgets: Sequence[int], rung: int) -> dict[int, str]:
    """Report every trial's value at rung ``rung`` (trial number -> value), then decide: pruned or on to the next
    rung, or, at the last rung, complete. Returns trial number -> ``"pruned" | "continue" | "complete"``.

    All values are reported before any decision (the pruner then sees the whole rung). A trial already told or
    already reported at this rung (a resumed tuner) is reported once only (Optuna ignores a second report)."""
    step = budgets[rung]
    trials = {n: optuna.Trial(study, study._storage.get_trial_id_from_study_id_trial_number(study._study_id, n))
              for n in values}  # fmt: skip
    for n, value in values.items():
        trials[n].report(value, step)
    out: dict[int, str] = {}
    for n, value in values.items():
        if rung == len(budgets) - 1:
            study.tell(trials[n], value)
            out[n] = "complete"
        elif trials[n].should_prune():
            study.tell(trials[n], state=TrialState.PRUNED)
            out[n] = "pruned"
        else:
            out[n] = "continue"
    return out


def fail(study: optuna.Study, number: int, reason: str) -> None:
    """Tell a trial failed (a diverged run, a run that logged no value of the metric), with the reason kept."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    study._storage.set_trial_user_attr(trial_id, REASON, reason)
    study.tell(number, state=TrialState.FAIL)


def set_attr(study: optuna.Study, number: int, key: str, value: Any) -> None:
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    study._storage.set_trial_user_attr(trial_id, key, value)


def accounting(study: optuna.Study) -> dict[str, Any]:
    """What ``tune.json`` says of an arm: its trials (state, params, values by rung, steps trained), the steps spent
    in all (every trial, pruned and failed ones included), and the chosen params (the best completed trial)."""
    trials = study.get_trials(deepcopy=False)
    rows = [
        {
            "number": t.number,
            "run_id": t.user_attrs.get(RUN_ID),
            "seed": t.user_attrs.get(SEED),
            "state": t.state.name.lower(),
            "params": dict(t.params),
            "values": [[k, v] for k, v in sorted(t.intermediate_values.items())],  # [rung budget, value]
            "value": t.value,
            "steps": int(t.user_attrs.get(STEPS, 0)),
            **({"reason": t.user_attrs[REASON]} if REASON in t.user_attrs else {}),
        }
        for t in trials
    ]
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    best = None
    if done:
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        best_trial = min(done, key=lambda t: (sign * float(t.value or 0.0), t.number))
        best = {"number": best_trial.number, "params": dict(best_trial.params), "value": best_trial.value}
    states = {s: sum(r["state"] == s for r in rows) for s in ("complete", "pruned", "fail", "running")}
    return {"trials": rows, "states": states, "spent_steps": sum(r["steps"] for r in rows), "best": best}


def _stable_hash(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())
