"""What every launcher does before it runs anything, and the sweep's status table.

``prepare`` decides, from each point's record and files, what runs now:
- a point another attempt runs (its lock is live: :mod:`rlsweep.rundir.lock`), or whose SLURM job is still queued,
  is left alone, whichever launcher started it;
- a completed point is skipped while its budget is reached (raising ``budget.total_steps`` continues it);
- a point with progress made under another training config is refused, all such points in one message
  naming the keys that differ, before anything starts, unless ``resume=continue`` (go on under the new
  config) or ``resume=restart`` (set its files aside in ``discarded/`` and start over in a new W&B run);
  ``resume=previous`` sets an unreadable newest checkpoint aside and resumes the one before it (only where
  the last attempt failed on it);
- anything else (pending, interrupted, failed, stopped) runs and resumes its checkpoint; ``only=failed``
  reruns just the failed ones. A damaged record is rebuilt from the run's own files (the damaged file kept).
Only then does it write the configs and records of the points that run, so a refused grid changes nothing,
and rerunning a finished 10,000-point sweep touches no file. ``process_groups`` then says which of them share
a process (``seeds_per_process``; :func:`rlsweep.launching.plan.seed_groups`) from the progress their records
hold.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsweep.config import ConfigError
from rlsweep.config.files import CONFIG_FILE, read_config, write_config
from rlsweep.config.fingerprint import differences, fingerprint, training_config
from rlsweep.launching.job import final_metrics
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point, seed_groups
from rlsweep.launching.queue import queued_job_ids
from rlsweep.rundir.lock import STALE_S, Holder, live_holder
from rlsweep.rundir.metrics import last_metrics
from rlsweep.rundir.record import (
    CHECKPOINT_NAME,
    PREVIOUS_NAME,
    RUN_FILE,
    RunRecord,
    amend_unheld,
    record_lock,
    set_aside,
    unchanged,
)

# Columns of the status table are cut to these widths so that a line fits in 120 columns (_LINE_WIDTH); where
# it would not (long progress or job columns), the run column is cut further, to no less than _MIN_RUN_WIDTH.
_LINE_WIDTH = 120
_MIN_RUN_WIDTH = 24
_RUN_WIDTH = 44
_METRIC_WIDTH = 22
# What a restart sets aside: the run's checkpoints and snapshots, metrics, W&B files, config, and evaluations
# of the old checkpoints (rlsweep eval), which would describe a run that no longer exists.
_RUN_FILES = (CHECKPOINT_NAME, PREVIOUS_NAME, "checkpoints", "metrics.jsonl", "wandb", CONFIG_FILE, "eval")


@dataclass
class _Start:
    point: Point
    record: RunRecord | None
    fingerprint: str
    action: str  # resume | restart | previous | continue (under a changed config)
    change: str = ""


def prepare(plan: Plan, launcher: str) -> list[Point]:
    """Decide what runs (refusing changed configs in one ConfigError), then write its configs and records."""
    only = plan.settings.only
    starts: list[_Start] = []
    skipped: dict[str, int] = {}
    refused: list[str] = []
    queue = _SlurmQueue()
    shared: dict[tuple[str, int], tuple[Any, str]] = {}  # config sections the points share, serialised once
    for p in plan.points:
        run_dir = plan.run_dir(p)
        record = _record_or_rebuilt(run_dir, p)
        fp = fingerprint(p.config, shared)
        resume = str(p.config.get("resume", "check"))
        reason = _leave_alone(record, run_dir, queue)
        if reason is None and record is not None:
            change = _training_change(record, run_dir, p, fp)
            if change and resume == "check":
                refused.append(f"{p.run_id} ({change})")
                continue
            restarting = resume == "restart" and _has_progress(record, run_dir)
            if record.status == "completed" and record.global_step >= p.total_steps and not (restarting or change):
                reason = "completed"
            elif only == "failed" and record.status != "failed":
                reason = record.status
            else:
                action = "restart" if restarting else "continue" if change else resume
                starts.append(_Start(p, record, fp, action, change))  # _write_start records the fingerprint
                continue
            if not change and record.fingerprint != fp and _has_progress(record, run_dir):
                # The same training config, fingerprinted anew: once, then never read again.
                amend_unheld(run_dir, unchanged(record), fingerprint=fp)
        elif reason is None and only == "failed":
            reason = "not started"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            starts.append(_Start(p, record, fp, "resume"))
    if refused:
        raise ConfigError(
            f"{len(refused)} point(s) have progress made under another training config: {refused[0]}"
            + (f" and {len(refused) - 1} more" if len(refused) > 1 else "")
            + "; run them under a new sweep_name= or name=, or rerun with resume=continue to go on under the new "
            "config, or resume=restart to start them over (their files are kept in discarded/)"
        )
    if skipped:
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        print(f"[rlsweep] skipping {sum(skipped.values())} point(s): {parts}", flush=True)
    return [s.point for s in starts if _write_start(plan, s, launcher)]


def process_groups(plan: Plan, points: Sequence[Point]) -> list[list[Point]]:
    """The jobs that run ``points`` (:func:`seed_groups`), each record's ``global_step`` saying where it starts; with
    ``seeds_per_process=1`` one job per point, and no record is read."""
    if all(int(p.config.get("seeds_per_process", 1)) <= 1 for p in points):
        return [[p] for p in points]
    # A damaged record counts as the launch will see it: rebuilt from the run's files (here in memory only).
    steps = {p.run_id: r.global_step for p in points if (r := _record_as_launched(plan.run_dir(p), p)) is not None}
    return seed_groups(points, steps)


def _live_owner(record: RunRecord | None, run_dir: Path) -> Holder | None:
    """The live owner of an unfinished point (another attempt runs it, whatever its record says), else None: the
    one judgement of the launch (:func:`_leave_alone`) and of the status table."""
    if record is None or record.status == "completed":
        return None
    return live_holder(run_dir)


def _leave_alone(record: RunRecord | None, run_dir: Path, queue: _SlurmQueue) -> str | None:
    """Why a point must not be started now (another attempt runs it, or its SLURM job is queued), else None."""
    if record is None or record.status == "completed":
        return None
    if _live_owner(record, run_dir) is not None:
        return "still running"
    # Whatever its record says: during a requeue it says cancelled while the job waits to run again.
    if record.launcher == "slurm" and record.job_id and record.job_id in queue.ids():
        return "queued in SLURM"
    return None


def running_elsewhere(run_dirs: Sequence[Path]) -> list[Path]:
    """The points another attempt runs now, or whose SLURM job waits in the queue."""
    queue = _SlurmQueue()
    return [d for d in run_dirs if _leave_alone(RunRecord.read_or_none(d), d, queue) is not None]


def _has_progress(record: RunRecord, run_dir: Path) -> bool:
    return record.global_step > 0 or record.status == "completed" or (run_dir / CHECKPOINT_NAME).exists()


def _training_change(record: RunRecord, run_dir: Path, p: Point, fp: str) -> str:
    """The keys that decide training and differ from those the point's progress was made under ('' if none)."""
    if record.fingerprint == fp or not _has_progress(record, run_dir):
        return ""
    try:
        old = training_config(read_config(run_dir))
    except (OSError, ValueError):
        return ""  # no config to compare (a rebuilt record of a run from an older version): the job checks
    # A key the old config does not have yet (added by a later rlsweep) at its default is no change: defaults of
    # new keys keep what runs did before them.
    defaults = _training_defaults()
    new = {k: v for k, v in training_config(p.config).items() if k in old or k not in defaults or v != defaults[k]}
    # Equal keys under another fingerprint: a record from before the fingerprint, or a YAML 1 read back as 1.0.
    return "" if old == new else differences(old, new)


@functools.cache
def _training_defaults() -> dict[str, Any]:
    from rlsweep.config.schema import Config

    return training_config(dataclasses.asdict(Config()))


def _write_start(plan: Plan, s: _Start, launcher: str) -> bool:
    """Write the point's config and record as decided, unless another launch changed or took it since this one read
    its record (a compare-and-swap under the record's lock: rlsweep.rundir.record); then leave it alone and return
    False."""
    run_dir = plan.run_dir(s.point)
    run_dir.mkdir(parents=True, exist_ok=True)
    with record_lock(run_dir):
        now = RunRecord.read_or_none(run_dir)
        same = now is None if s.record is None else now is not None and unchanged(s.record)(now)
        holder = live_holder(run_dir)
        if not same or holder is not None:
            why = f"another attempt runs it ({holder.describe()})" if holder else "another launch changed its record"
            print(f"[rlsweep] {s.point.run_id}: {why} while this launch prepared; left alone", flush=True)
            plan.taken_elsewhere.add(s.point.run_id)
            return False
        _write_start_locked(plan, s, launcher, run_dir)
    return True


def _write_start_locked(plan: Plan, s: _Start, launcher: str, run_dir: Path) -> None:
    p, record = s.point, s.record
    if record is not None and s.action == "restart":
        where = set_aside(run_dir, _RUN_FILES)
        record.global_step, record.final, record.status, record.error = 0, {}, "pending", None
        record.wandb_id, record.wandb_step = None, 0  # a new W&B run: the old one's history stays as it was
        record.changes = [*record.changes, [time.time(), f"restarted; the old files are in {where}"]]
        print(f"[rlsweep] {p.run_id}: starting over; the old files are in {where}", flush=True)
    elif record is not None and s.action == "previous" and _unreadable_checkpoint(record, run_dir):
        where = set_aside(run_dir, (CHECKPOINT_NAME,))
        (run_dir / PREVIOUS_NAME).replace(run_dir / CHECKPOINT_NAME)
        # The metrics after that checkpoint are recomputed; a new W&B run gets the kept ones again (no overlap).
        record.wandb_id, record.wandb_step = None, 0
        record.changes = [*record.changes, [time.time(), f"resumed from the previous checkpoint; newest in {where}"]]
        print(f"[rlsweep] {p.run_id}: resuming from the previous checkpoint; the newest is in {where}", flush=True)
    elif record is not None and s.action == "continue":
        changed = f"under a changed config: {s.change}" if s.change else f"to {p.total_steps} agent steps"
        record.changes = [*record.changes, [time.time(), f"continued {changed}"]]
        shown = f"under a changed config ({s.change})" if s.change else f"to {p.total_steps} agent steps"
        print(f"[rlsweep] {p.run_id}: continuing {shown}", flush=True)
    if record is not None and record.status == "completed":
        # It trains again (to a larger budget, under a changed config): until its job starts it is pending. Left
        # "completed", a waiting launcher would take it as done at once (SLURM's would not even record its job).
        record.status, record.error = "pending", None
    write_config(run_dir, p.config)
    if record is None:
        record = RunRecord(run_id=p.run_id, run_dir=str(run_dir), log=str(run_dir / "log.txt"))
    record.name, record.seed, record.sweep = p.name, p.seed, plan.sweep_name
    record.choices, record.overrides, record.total_steps = p.choices, p.overrides, p.total_steps
    record.fingerprint = s.fingerprint
    record.launcher = launcher
    record.write()


def _unreadable_checkpoint(record: RunRecord, run_dir: Path) -> bool:
    """``resume=previous`` acts only where the last attempt failed on an unreadable newest checkpoint (the job
    recorded an UnreadableCheckpoint) and an older one is there: the grid's other points resume as usual."""
    failed_on_it = record.status == "failed" and (record.error or "").startswith("UnreadableCheckpoint")
    return failed_on_it and (run_dir / PREVIOUS_NAME).exists()


def _record_or_rebuilt(run_dir: Path, p: Point) -> RunRecord | None:
    """The point's record; a damaged one is kept aside as ``run.json.damaged`` and rebuilt from the run's files."""
    try:
        return RunRecord.read(run_dir)
    except FileNotFoundError:
        return None
    except ValueError:
        pass
    with record_lock(run_dir):
        try:  # read again under the lock: another launch may have rebuilt it since
            return RunRecord.read(run_dir)
        except FileNotFoundError:
            return None
        except ValueError as e:
            why = e
        damaged = run_dir / f"{RUN_FILE}.damaged"
        (run_dir / RUN_FILE).replace(damaged)
        record = _rebuilt(run_dir, p)
        record.changes = [[time.time(), f"record rebuilt from the run's files ({why}); the damaged one is {damaged}"]]
        record.write()
    print(f"[rlsweep] {p.run_id}: damaged record rebuilt from the run's files (kept as {damaged})", flush=True)
    return record


def _record_as_launched(run_dir: Path, p: Point) -> RunRecord | None:
    """The point's record as a launch sees it (:func:`_record_or_rebuilt`), but a damaged one is rebuilt in memory
    only: for a look before the launch (the dry run's processes), which writes nothing."""
    try:
        return RunRecord.read(run_dir)
    except FileNotFoundError:
        return None
    except ValueError:
        return _rebuilt(run_dir, p)


def _rebuilt(run_dir: Path, p: Point) -> RunRecord:
    """:func:`rebuild_record`, with what the plan knows of the point and its files do not hold."""
    record = rebuild_record(run_dir, p.run_id)
    record.name, record.seed, record.choices, record.overrides = p.name, p.seed, p.choices, p.overrides
    record.sweep = str(p.config.get("sweep_name") or "")  # the plan's sweep name
    return record


def rebuild_record(run_dir: Path, run_id: str) -> RunRecord:
    """A record from what a run leaves besides it: config.yaml (identity, budget), metrics.jsonl (progress,
    final metrics), the W&B folder (the run's W&B id). Completed if the metrics reach the budget, else failed
    (a rerun resumes its checkpoint)."""
    record = RunRecord(run_id=run_id, run_dir=str(run_dir), log=str(run_dir / "log.txt"))
    try:
        raw = read_config(run_dir)
        record.seed, record.name = int(raw.get("seed", 0)), str(raw.get("name") or "")
        record.sweep = str(raw.get("sweep_name") or "")
        record.total_steps = int(raw["budget"]["total_steps"])
        record.fingerprint = fingerprint(raw)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    last = last_metrics(run_dir)
    record.global_step = int(last.get("global_step", 0))
    # Attempts, counted as the job starts the run's log.txt shows: the local launcher writes a line "=== <time>
    # <command>" into it at every start of the process that trains the run ("=== <time> trained in one process
    # with ..." for the other seeds of a shared process). A SLURM job's log is elsewhere and an inline run writes
    # no such line, so a run with progress counts at least the one start that made it.
    record.attempts = _starts_in_log(run_dir / "log.txt")
    if record.attempts == 0 and (record.global_step > 0 or (run_dir / CHECKPOINT_NAME).exists()):
        record.attempts = 1
    runs = sorted((run_dir / "wandb").glob("*run-*-*"))
    if runs:
        record.wandb_id = runs[-1].name.rsplit("-", 1)[-1]
    if record.total_steps and record.global_step >= record.total_steps and (run_dir / CHECKPOINT_NAME).exists():
        record.status = "completed"
        record.final = final_metrics(last)
    else:
        record.status = "failed"
        record.error = "record rebuilt from the run's files; a rerun resumes its checkpoint"
    return record


def _starts_in_log(log: Path) -> int:
    """The lines of a run's log.txt that mark a job's start (``=== ...``: :func:`rlsweep.launching.local._start`)."""
    try:
        with open(log, "rb") as f:
            return sum(1 for line in f if line.startswith(b"=== "))
    except OSError:
        return 0


class _SlurmQueue:
    """SLURM's queue, asked once per launch and only if a record points to a SLURM job."""

    def __init__(self) -> None:
        self._ids: set[str] | None = None

    def ids(self) -> set[str]:
        if self._ids is None:
            self._ids = queued_job_ids() or set()
        return self._ids


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _age(seconds: float) -> str:
    """A heartbeat's age: in seconds while it matters to the lock (up to STALE_S and beyond it a while)."""
    return f"{seconds:.0f} s" if seconds < 600 else _duration(seconds)


def _headline(last: dict[str, Any]) -> str:
    """The one metric that says how a run is doing: the score once there is one, else exploration (cells on
    the synthetic maze, rooms on Montezuma), else the return."""
    score = last.get("episode/score")
    candidates = ["explore/cells", "explore/rooms", "episode/return"]
    if score:
        candidates.insert(0, "episode/score")
    for key in [*candidates, "episode/score"]:
        if last.get(key) is not None:
            return f"{key.split('/')[1]}={last[key]:.4g}"
    return "-"


def status_table(ledger: Ledger, run_ids: Sequence[str] | None = None) -> str:
    """One line per point (status, attempts, progress, last metric, job, the heartbeat's age while another attempt
    runs it), the counts and the sweep's ETA; at most 120 columns.

    A point whose lock is live is shown as running whatever its record says (a launch leaves it alone: the same
    judgement, :func:`_live_owner`), and as ``stalled`` once its heartbeat is older than
    :data:`~rlsweep.rundir.lock.STALLED_S`: the process exists (or may, on another host) but does not beat; a line below
    the table names it and what that may mean. A record that says running although nobody holds the point's lock
    (no live process on its host, no heartbeat from another) is shown as ``stopped``: the process died without
    recording its end (SIGKILL, out of memory, a lost node); a rerun resumes it. Damaged records are rows too, and
    listed at the end.
    """
    wanted = None if run_ids is None else set(run_ids)
    rows = [["run", "status", "att", "progress", "last metric", "job", "beat"]]
    counts: dict[str, int] = {}
    remaining, rate = 0, 0.0
    failed: list[RunRecord] = []
    stalled: list[tuple[RunRecord, Holder]] = []
    now = time.time()
    for r in ledger.records():
        if wanted is not None and r.run_id not in wanted:
            continue
        last = last_metrics(Path(r.run_dir))
        step = max(int(last.get("global_step", 0)), r.global_step)
        total = r.total_steps
        progress = f"{step}/{total} ({100 * step / total:.0f}%)" if total else "-"
        metric = _headline(last)
        status = r.status
        owner = _live_owner(r, Path(r.run_dir))
        if owner is not None and owner.stalled(now):
            status = "stalled"
            stalled.append((r, owner))
        elif owner is not None:
            status = "running"
        elif status == "running":
            status = "stopped"
        if status == "running":
            rate += float(last.get("perf/sps") or 0.0)
        if status != "completed":
            remaining += max(total - step, 0)
        if status == "failed":
            failed.append(r)
        counts[status] = counts.get(status, 0) + 1
        job = (owner.job_id or owner.pid) if owner is not None else (r.job_id or r.pid or "-")
        beat = _age(owner.age(now)) if owner is not None else ""
        rows.append([_cut(r.run_id, _RUN_WIDTH), status, str(r.attempts), progress, _cut(metric, _METRIC_WIDTH),
                     str(job), beat])  # fmt: skip
    damaged = [(d, why) for d, why in ledger.damaged if wanted is None or d.name in wanted]
    for run_dir, _ in damaged:
        last = last_metrics(run_dir)
        counts["damaged"] = counts.get("damaged", 0) + 1
        rows.append([_cut(run_dir.name, _RUN_WIDTH), "damaged", "?", f"{int(last.get('global_step', 0))}/?",
                     _cut(_headline(last), _METRIC_WIDTH), "-", ""])  # fmt: skip
    if not any(row[-1] for row in rows[1:]):
        rows = [row[:-1] for row in rows]  # no point runs: no heartbeat to show
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    excess = sum(widths) + 2 * (len(widths) - 1) - _LINE_WIDTH
    if excess > 0:  # long progress or job columns (a 10M-step SLURM sweep): the run ids give way
        widths[0] = max(widths[0] - excess, _MIN_RUN_WIDTH)
        rows = [[_cut(row[0], widths[0]), *row[1:]] for row in rows]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no points"
    if remaining and rate:
        summary += f"; ETA {_duration(remaining / rate)} at {rate:.0f} steps/s"
    lines.append(summary)
    for r, owner in stalled:
        head = f"STALLED {r.run_id}: no heartbeat for {_age(owner.age(now))}"
        who = f"pid {owner.pid} on {owner.host}" + (f", SLURM job {owner.job_id}" if owner.job_id else "")
        if len(f"{head} from {who}") <= _LINE_WIDTH:
            lines.append(f"{head} from {who}")
        else:  # a long run id or host name: each on its own line, uncut where it fits
            lines += [_cut(head, _LINE_WIDTH), _cut(f"  from {who}", _LINE_WIDTH)]
        if owner.here:
            why = ("its process lives, its heartbeat does not: "
                   "stopped (SIGSTOP, Ctrl-Z; kill -CONT resumes it) or hung on I/O")  # fmt: skip
        else:
            why = (f"stopped (SIGSTOP), hung on I/O, or its node unreachable; a launch takes it over once "
                   f"{_duration(STALE_S)} pass without a heartbeat")  # fmt: skip
        lines.append(_cut(f"  {why}", _LINE_WIDTH))
    for r in failed:
        lines.append(_cut(f"FAILED {r.run_id} (log: {r.log_path})", 120))
        lines.append(_cut(f"  {r.error or '?'}", 120))
    for run_dir, why in damaged:
        lines.append(_cut(f"DAMAGED {run_dir.name}: the next launch rebuilds its record from the run's files", 120))
        lines.append(_cut(f"  {why.replace(str(run_dir / RUN_FILE), RUN_FILE)}", 120))
    return "\n".join(lines)
