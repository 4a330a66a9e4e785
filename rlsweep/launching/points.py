"""What every launcher does before it runs anything, and the sweep's status table.

``prepare`` gives each planned point its directory, its resolved ``config.yaml`` and its record, then the
records decide what runs: completed points are skipped, a point whose process is still alive is left alone,
interrupted ones (preempted, cancelled, failed, or running without a live process) run again and resume
from their checkpoints, and ``only=failed`` reruns just the failed ones. A grid extended by new values
therefore runs only its new points, and rerunning a finished 10,000-point sweep touches no file.
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsweep.launching.job import write_config
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point
from rlsweep.record import RunRecord, pid_alive

# Columns of the status table are cut to these widths so that a line fits in 120 columns.
_RUN_WIDTH = 44
_METRIC_WIDTH = 22


def alive_here(record: RunRecord) -> bool:
    """A running record whose process lives on this host (a pid alone says nothing about another host)."""
    return record.status == "running" and record.host == socket.gethostname() and pid_alive(record.pid)


def prepare(plan: Plan, launcher: str) -> list[Point]:
    """Record every point (writing configs only for those about to run) and return those to run now."""
    only = plan.settings.only
    todo: list[Point] = []
    skipped: dict[str, int] = {}
    for p in plan.points:
        run_dir = plan.run_dir(p)
        record = RunRecord.read_or_none(run_dir)
        if record is not None:
            alive = alive_here(record)
            if record.status == "completed" or alive or (only == "failed" and record.status != "failed"):
                reason = "still running" if alive else record.status
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
        elif only == "failed":
            skipped["not started"] = skipped.get("not started", 0) + 1
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, p.config)
        if record is None:
            record = RunRecord(run_id=p.run_id, run_dir=str(run_dir), log=str(run_dir / "log.txt"))
        record.name, record.seed, record.sweep = p.name, p.seed, plan.sweep_name
        record.choices, record.overrides, record.total_steps = p.choices, p.overrides, p.total_steps
        record.launcher = launcher
        record.write()
        todo.append(p)
    if skipped:
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        print(f"[rlsweep] skipping {sum(skipped.values())} point(s): {parts}", flush=True)
    return todo


def last_metrics(run_dir: Path) -> dict[str, Any]:
    """The last complete line of a run's metrics.jsonl (reads only the file's tail)."""
    path = run_dir / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode(errors="ignore").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            row: dict[str, Any] = json.loads(line)
            return row
        except json.JSONDecodeError:
            continue
    return {}


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
    """One line per point (status, attempts, progress, last metric, job), the counts and the sweep's ETA.

    A record that says running although its process is gone from this host is shown as ``stopped``: the
    process died without recording its end (SIGKILL, out of memory); a rerun resumes it.
    """
    wanted = None if run_ids is None else set(run_ids)
    rows = [["run", "status", "att", "progress", "last metric", "job"]]
    counts: dict[str, int] = {}
    remaining, rate = 0, 0.0
    failed: list[RunRecord] = []
    here = socket.gethostname()
    for r in ledger.records():
        if wanted is not None and r.run_id not in wanted:
            continue
        last = last_metrics(Path(r.run_dir))
        step = max(int(last.get("global_step", 0)), r.global_step)
        total = r.total_steps
        progress = f"{step}/{total} ({100 * step / total:.0f}%)" if total else "-"
        metric = _headline(last)
        status = r.status
        if status == "running" and r.host == here and r.launcher != "slurm" and not alive_here(r):
            status = "stopped"
        if status == "running":
            rate += float(last.get("perf/sps") or 0.0)
        if status != "completed":
            remaining += max(total - step, 0)
        if status == "failed":
            failed.append(r)
        counts[status] = counts.get(status, 0) + 1
        rows.append([_cut(r.run_id, _RUN_WIDTH), status, str(r.attempts), progress, _cut(metric, _METRIC_WIDTH),
                     str(r.job_id or r.pid or "-")])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no points"
    if remaining and rate:
        summary += f"; ETA {_duration(remaining / rate)} at {rate:.0f} steps/s"
    lines.append(summary)
    for r in failed:
        lines.append(_cut(f"FAILED {r.run_id} (log: {r.log_path})", 120))
        lines.append(_cut(f"  {r.error or '?'}", 120))
    for problem in ledger.damaged:
        lines.append(f"DAMAGED {problem}")
    return "\n".join(lines)
