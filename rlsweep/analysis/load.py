"""Reading a sweep directory into tidy tables; this module owns the on-disk contract of a sweep.

A sweep directory holds one sub-directory per run (grid point x seed) with ``run.json`` (identity, choices,
status, budget) and ``metrics.jsonl`` (one JSON object per logged iteration). Directories without ``run.json``
(``.hydra``, ``report``, ...) are not runs and are ignored.

Honesty rules enforced here, because every later table and plot inherits them:

* unfinished (``running``) and ``failed`` runs are kept and flagged, never dropped;
* a configuration with fewer seeds than the sweep's seed set is kept and flagged with the missing seeds;
* anything that could not be read (broken ``run.json``, unparsable metric lines) is recorded in
  :attr:`SweepData.issues` so the report can show it, instead of disappearing silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlsweep.config.schema import CONTROL_KEYS
from rlsweep.rundir.metrics import METRICS_FILE, read_metrics
from rlsweep.rundir.record import RUN_FILE, RunRecord

# Columns the loader itself owns; a choice key with one of these names is renamed to "choice.<key>" so it can
# never overwrite run identity or the step axis.
RESERVED_COLUMNS = frozenset(
    {
        "run_id",
        "name",
        "seed",
        "status",
        "global_step",
        "iteration",
        "total_steps",
        "progress",
        "wandb_id",
        "wandb_project",
        "wandb_entity",
        "git_commit",
        "git_dirty",
        "run_dir",
        "sweep",
    }
)
COMPLETED = "completed"
# Filled into a choice column when a run does not record that group, so groupby does not drop the run.
UNSET = "(unset)"
# A completed run that logged less than this fraction of its budget gets a flag (rounding of the last
# iteration can leave it a hair short of 1.0, which is not worth a flag).
_PROGRESS_TOLERANCE = 0.999
# What to do about a damaged run record (rlsweep.launching.points._record_or_rebuilt).
_REBUILD = ("the next launch of the sweep (the same sweep command, which trains nothing completed) rebuilds it "
            "from the run's files; report again after it")  # fmt: skip
_SEED_IN_RUN_ID = re.compile(r"^(?P<name>.+)-s(?P<seed>-?\d+)$")
# Command-line value overrides that identify a run rather than vary its configuration.
_NOT_FACTORS = frozenset({"seed", *CONTROL_KEYS})


def value_overrides(overrides: Iterable[str], choices: dict[str, str]) -> dict[str, str]:
    """``key=value`` overrides from run.json that are not group choices (``ppo.learning_rate=3e-4``).

    A sweep over a value (``python sweep.py -m ppo.learning_rate=1e-4,3e-4``) is as much an ablation axis as
    a group choice, so such keys become columns too (only those that vary across the sweep are kept).
    """
    out: dict[str, str] = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.lstrip("+~")
        if not sep or key in choices or key in _NOT_FACTORS or key.startswith("hydra") or "/" in key:
            continue
        out[key] = value
    return out


@dataclass
class SweepData:
    """Everything :func:`load_sweep` read from one sweep directory.

    Attributes:
        sweep_dir: the directory that was read.
        runs: one row per run: ``run_id, name, seed, status, <choice columns>, total_steps, global_step,
            progress, n_logged, last_logged_step, wandb_id, run_dir, unfinished, flags``.
            ``global_step`` is the larger of ``run.json``'s value and the last logged step (a crashed job may
            not have updated ``run.json``); ``progress = global_step / total_steps``.
        metrics: tidy metrics, one row per (run, logged iteration): ``run_id, name, seed, status,
            <choice columns>, global_step, iteration, <metric columns>``; missing values are NaN.
        configs: one row per configuration (``name``): choices, ``n_runs``, ``n_completed``, ``seeds``,
            ``missing_seeds`` (seeds other configurations have but this one lacks), ``flags``.
        choice_columns: the choice columns, in a stable order.
        metric_names: metric columns present in ``metrics``.
        issues: human-readable problems met while reading (shown in the report).
    """

    sweep_dir: Path
    runs: pd.DataFrame
    metrics: pd.DataFrame
    configs: pd.DataFrame
    choice_columns: list[str]
    metric_names: list[str]
    issues: list[str] = field(default_factory=list)
    sweep_dirs: list[Path] = field(default_factory=list)  # every directory read (sweep_dir is the first)

    @property
    def sweep_names(self) -> list[str]:
        """Distinct ``sweep`` values recorded by the runs (normally exactly one)."""
        return sorted({str(s) for s in self.runs["sweep"].dropna()})

    @property
    def factors(self) -> list[str]:
        """Choice columns that take at least two values in this sweep: the axes of the ablation."""
        return [c for c in self.choice_columns if self.runs[c].nunique(dropna=False) >= 2]

    @property
    def seeds(self) -> list[int]:
        """Union of seeds over all configurations: the seed set every configuration is expected to have."""
        return sorted({int(s) for s in self.runs["seed"]})


def choice_column(key: str) -> str:
    """Column name used for choice group ``key`` (renamed only when it would clash with a loader column)."""
    return f"choice.{key}" if key in RESERVED_COLUMNS else key


def read_metrics_file(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Parse one ``metrics.jsonl`` (:func:`rlsweep.rundir.metrics.read_metrics`); return the records and notes about
    skipped lines and values.

    A job killed mid-write leaves a truncated final line; it is skipped (and noted). An unparsable line
    elsewhere means real corruption: it is also skipped, but noted as such so the report shows it. A NaN or
    infinity literal is read as missing, and noted.
    """
    notes: list[str] = []
    return read_metrics(path, notes=notes, require="global_step"), notes


def _metrics_frame(records: list[dict[str, Any]], path: Path, notes: list[str]) -> pd.DataFrame:
    """Records -> numeric frame sorted by step, one row per distinct global_step."""
    if not records:
        return pd.DataFrame({"global_step": pd.Series(dtype="int64")})
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        # Metric values are floats by contract; anything else (null, strings) becomes NaN rather than
        # turning the whole column into objects.
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame = frame.dropna(subset=["global_step"])
    frame["global_step"] = frame["global_step"].astype("int64")
    steps = frame["global_step"].to_numpy()
    if len(steps) > 1 and not bool(np.all(np.diff(steps) > 0)):
        # A job resumed from a checkpoint may re-log steps after the checkpoint; the later lines belong to
        # the trajectory that continued, so they win.
        notes.append(f"{path}: global_step not strictly increasing; kept the last line for repeated steps")
        frame = frame.drop_duplicates(subset="global_step", keep="last").sort_values("global_step")
    return frame.reset_index(drop=True)


def _read_record(run_dir: Path, issues: list[str]) -> tuple[RunRecord, str, int]:
    """The run's record, its name and seed; name and seed fall back on the run id pattern ``<name>-s<seed>``."""
    try:
        data = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
        record = RunRecord.from_dict({"run_id": run_dir.name, **data})
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(str(e)) from None
    match = _SEED_IN_RUN_ID.match(record.run_id)
    name = record.name or (match.group("name") if match else record.run_id)
    seed = data.get("seed")
    if seed is None:
        if match is None:
            issues.append(f"{run_dir}: run.json has no seed and run_id has no -s<seed>; using seed -1")
            seed = -1
        else:
            seed = int(match.group("seed"))
    return record, name, int(seed)


def _discover(sweep_dir: Path) -> Iterable[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / RUN_FILE).is_file())


def load_sweep(sweep_dir: Path | str | Sequence[Path | str]) -> SweepData:
    """Read every run directly under ``sweep_dir`` (or under each of several sweep directories) into one
    :class:`SweepData`.

    Several directories are read as one sweep: a configuration that appears in two of them pools its seeds
    (a second sweep that added seeds), and different configurations become levels of the same factors.

    The steps, each its own function: find the directories (:func:`_sweep_dirs`), read each run
    (:func:`_read_runs`), the runs table with its choice columns (:func:`_runs_table`), what its identities say
    (:func:`_identity_issues`), the configurations table, the runs' flags, and the tidy metrics
    (:func:`_metrics_table`).

    Raises:
        FileNotFoundError: a directory does not exist.
        ValueError: no run (no ``*/run.json``) could be read.
    """
    dirs = _sweep_dirs(sweep_dir)
    issues: list[str] = []
    read = _read_runs(dirs, issues)
    runs, choice_columns = _runs_table(read)
    issues += _identity_issues(runs, several_dirs=len(dirs) > 1)
    configs = _configs_table(runs, choice_columns, issues)
    runs = _flag_runs(runs, configs)
    metrics, metric_names = _metrics_table([r.frame for r in read], runs, choice_columns)
    return SweepData(
        sweep_dir=dirs[0],
        sweep_dirs=dirs,
        runs=runs,
        metrics=metrics,
        configs=configs,
        choice_columns=choice_columns,
        metric_names=metric_names,
        issues=issues,
    )


def _sweep_dirs(sweep_dir: Path | str | Sequence[Path | str]) -> list[Path]:
    """The directories to read, each checked to exist."""
    dirs = [Path(sweep_dir)] if isinstance(sweep_dir, str | Path) else [Path(d) for d in sweep_dir]
    if not dirs:
        raise ValueError("no sweep directory given")
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"sweep directory not found: {d}")
    return dirs


@dataclass
class _Run:
    """One run as read from its directory: its row of the runs table and its metrics."""

    row: dict[str, Any]  # choices under "__choice__<key>" (:func:`_runs_table` names their columns)
    choice_keys: list[str]  # group choices, then value overrides
    override_keys: set[str]  # which of them are value overrides
    frame: pd.DataFrame  # its metrics, ``run_id`` first


def _read_runs(dirs: Sequence[Path], issues: list[str]) -> list[_Run]:
    """Every readable run under ``dirs``, in directory order; a damaged record is said in ``issues``.

    Raises:
        ValueError: no run could be read (saying which records were damaged, if any).
    """
    read: list[_Run] = []
    damaged: list[str] = []
    for run_dir in (r for d in dirs for r in _discover(d)):
        try:
            read.append(_read_run(run_dir, issues))
        except (ValueError, OSError) as exc:
            # Said, not read from the run's other files as the launch's rebuild does: those hold neither the run's
            # group choices nor its overrides (the launch takes them from its plan, which the report does not
            # have), so a rebuilt run could not be put in its configuration, and a guessed one would change the
            # comparison without a word. The launch rebuilds the record, and the next report has the run.
            damaged.append(f"{run_dir / RUN_FILE} is damaged ({exc})")
            issues.append(f"{damaged[-1]}: run not included; {_REBUILD}")
    if not read:
        where = ", ".join(map(str, dirs))
        if damaged:
            raise ValueError(f"no readable run under {where}: {'; '.join(damaged)}; {_REBUILD}")
        raise ValueError(f"no runs found under {where} (expected sub-directories containing {RUN_FILE})")
    return read


def _read_run(run_dir: Path, issues: list[str]) -> _Run:
    """One run's record and metrics (raises ValueError / OSError for a damaged record)."""
    meta, name, seed = _read_record(run_dir, issues)
    choices = {str(k): str(v) for k, v in meta.choices.items()}
    values = value_overrides(meta.overrides, choices)
    choices.update(values)
    frame = _run_metrics(run_dir, issues)
    row = _run_row(meta, name, seed, choices, frame, run_dir)
    frame.insert(0, "run_id", meta.run_id)
    return _Run(row, list(choices), set(values), frame)


def _run_metrics(run_dir: Path, issues: list[str]) -> pd.DataFrame:
    """The run's metrics frame; a missing or partly unreadable ``metrics.jsonl`` is said in ``issues``."""
    metrics_path = run_dir / METRICS_FILE
    if metrics_path.is_file():
        records, notes = read_metrics_file(metrics_path)
        issues.extend(notes)
    else:
        records = []
        issues.append(f"{run_dir}: no {METRICS_FILE}")
    frame = _metrics_frame(records, metrics_path, issues)
    # A logged key named like a loader column (e.g. "status") would clash in the merge of _metrics_table.
    return frame.drop(columns=[c for c in frame.columns if c in RESERVED_COLUMNS - {"global_step", "iteration"}])


def _run_row(
    meta: RunRecord, name: str, seed: int, choices: dict[str, str], frame: pd.DataFrame, run_dir: Path
) -> dict[str, Any]:
    """The run's row of the runs table."""
    total = meta.total_steps
    total_steps = float(total) if isinstance(total, int | float) and total > 0 else float("nan")
    last_logged = int(frame["global_step"].iloc[-1]) if len(frame) else 0
    recorded = meta.global_step
    # A crashed job may not have updated run.json: the last logged step counts too.
    global_step = max(int(recorded) if isinstance(recorded, int | float) else 0, last_logged)
    return {
        "run_id": meta.run_id,
        "name": name,
        "seed": seed,
        "status": meta.status or "unknown",
        "sweep": meta.sweep or None,
        # prefixed until every run is read: a choice key may be named like a loader column
        **{f"__choice__{k}": v for k, v in choices.items()},
        "total_steps": total_steps,
        "global_step": global_step,
        "progress": global_step / total_steps if total_steps == total_steps else float("nan"),
        "n_logged": len(frame),
        "last_logged_step": last_logged,
        "wandb_id": meta.wandb_id,
        "wandb_project": (meta.wandb or {}).get("project"),
        "wandb_entity": (meta.wandb or {}).get("entity"),
        "git_commit": (meta.git or {}).get("commit"),
        "git_dirty": (meta.git or {}).get("dirty"),
        "run_dir": str(run_dir),
    }


def _runs_table(read: Sequence[_Run]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table, sorted by configuration and seed, and its choice columns.

    Choice columns follow the first-seen order of the keys (the config's group order); a run without a key reads
    :data:`UNSET`. Value overrides the whole sweep shares are dropped, and those that vary name the configuration.
    """
    choice_keys = list(dict.fromkeys(k for r in read for k in r.choice_keys))
    override_keys = set().union(*(r.override_keys for r in read))
    runs = pd.DataFrame([r.row for r in read]).rename(columns={f"__choice__{k}": choice_column(k) for k in choice_keys})
    for col in (choice_column(k) for k in choice_keys):
        runs[col] = runs[col].fillna(UNSET).astype(str)
    # Value overrides the whole sweep shares (budget.total_steps=...) say nothing about the comparison.
    constant = [c for k in choice_keys if k in override_keys and runs[c := choice_column(k)].nunique() < 2]
    runs = runs.drop(columns=constant)
    choice_columns = [c for c in (choice_column(k) for k in choice_keys) if c not in constant]
    varied = [(k, c) for k in choice_keys if k in override_keys and (c := choice_column(k)) in choice_columns]
    if varied:
        runs["name"] = _names_with_overrides(runs, varied)
    return runs.sort_values(["name", "seed", "run_id"], kind="stable").reset_index(drop=True), choice_columns


def _names_with_overrides(runs: pd.DataFrame, varied: Sequence[tuple[str, str]]) -> pd.Series:
    """Run names with the varied value overrides appended (``atari_check-perf.autocast=bf16``).

    A configuration is its name and the value overrides that vary: `-m experiment=atari_check
    perf.autocast=none,bf16` is two configurations of one preset name, each with its own seeds.
    """
    suffix = ["".join(f"-{k}={row[c]}" for k, c in varied if row[c] != UNSET) for _, row in runs.iterrows()]
    return runs["name"] + pd.Series(suffix, index=runs.index, dtype=str)


def _identity_issues(runs: pd.DataFrame, several_dirs: bool) -> list[str]:
    """What the runs' identities say is wrong: a run id twice, two runs of one seed, runs of several sweeps."""
    issues = []
    dup = runs[runs["run_id"].duplicated(keep=False)]
    if len(dup):
        issues.append(f"duplicate run_id(s) {sorted(set(dup['run_id']))}: metrics of these runs are merged")
    pairs = runs[runs.duplicated(subset=["name", "seed"], keep=False)]
    for (name, seed), grp in pairs.groupby(["name", "seed"]):
        issues.append(f"configuration {name} seed {seed} has {len(grp)} runs: {', '.join(grp['run_dir'])}")
    sweeps = {str(s) for s in runs["sweep"].dropna()}
    # Several directories read as one sweep hold several sweeps by design.
    if not several_dirs and len(sweeps) > 1:
        issues.append(f"runs belong to several sweeps: {sorted(sweeps)}")
    return issues


def _metrics_table(
    frames: Sequence[pd.DataFrame], runs: pd.DataFrame, choice_columns: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The tidy metrics: every run's lines with its identity and choices, sorted by run and step; and the metric
    columns."""
    id_cols = ["run_id", "name", "seed", "status", *choice_columns]
    metrics = pd.concat(frames, ignore_index=True)
    metrics = metrics.merge(runs[id_cols].drop_duplicates("run_id"), on="run_id", how="left")
    metric_names = sorted(c for c in metrics.columns if c not in set(id_cols) | {"global_step", "iteration"})
    metrics = metrics[[*id_cols, "global_step", *(["iteration"] if "iteration" in metrics else []), *metric_names]]
    metrics = metrics.sort_values(["name", "seed", "run_id", "global_step"], kind="stable").reset_index(drop=True)
    return metrics, metric_names


def _configs_table(runs: pd.DataFrame, choice_columns: list[str], issues: list[str]) -> pd.DataFrame:
    """One row per configuration with seed coverage and status counts."""
    all_seeds = sorted({int(s) for s in runs["seed"]})
    rows = []
    for name, grp in runs.groupby("name", sort=True):
        seeds = sorted({int(s) for s in grp["seed"]})
        missing = [s for s in all_seeds if s not in seeds]
        row: dict[str, Any] = {"name": name}
        for col in choice_columns:
            values = sorted(set(grp[col]))
            if len(values) > 1:
                issues.append(f"configuration {name}: seeds disagree on {col} ({values})")
            row[col] = values[0] if len(values) == 1 else "|".join(values)
        n_completed = int((grp["status"] == COMPLETED).sum())
        flags = []
        if missing:
            flags.append(f"missing seed(s) {', '.join(map(str, missing))} ({len(seeds)}/{len(all_seeds)} seeds)")
        other = grp[grp["status"] != COMPLETED]
        for status, sub in other.groupby("status"):
            flags.append(f"{len(sub)} {status}")
        row.update(
            n_runs=len(grp),
            n_completed=n_completed,
            seeds=seeds,
            missing_seeds=missing,
            flags="; ".join(flags),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _flag_runs(runs: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Add ``unfinished`` and a human-readable ``flags`` column to the runs table."""
    runs = runs.copy()
    runs["unfinished"] = runs["status"] != COMPLETED
    flags = []
    for row in runs.itertuples(index=False):
        notes = []
        pct = f"{100 * row.progress:.0f} % of budget" if row.progress == row.progress else "budget unknown"
        if row.status != COMPLETED:
            notes.append(f"{row.status} at {pct}")
        elif row.progress == row.progress and row.progress < _PROGRESS_TOLERANCE:
            notes.append(f"completed but only {pct}")
        if row.n_logged == 0:
            notes.append("no metrics logged")
        flags.append("; ".join(notes))
    runs["flags"] = flags
    missing = dict(zip(configs["name"], configs["missing_seeds"], strict=True))
    runs["config_missing_seeds"] = [missing[n] for n in runs["name"]]
    return runs
