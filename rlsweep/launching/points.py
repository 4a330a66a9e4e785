"""What every launcher does before it runs anything: name the grid points, record them, pick the ones to run.

A launcher receives the sweeper's job overrides; here each becomes a :class:`Point` (run id, directory,
overrides) and is recorded as pending in the ledger. Then the ledger decides what runs: completed points are
skipped, interrupted ones (running without a live process, preempted, cancelled, failed) run again and resume
from their checkpoints, and ``only=failed`` reruns just the failed ones. A grid extended by new values
therefore runs only its new points.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig

from rlsweep.config.naming import config_name, run_id
from rlsweep.launching.ledger import Ledger, pid_alive

ONLY_CHOICES = ("unfinished", "failed")


@dataclass
class Point:
    index: int
    run_id: str
    name: str
    overrides: list[str]
    run_dir: Path
    total_steps: int

    def job_args(self, sweep_name: str) -> list[str]:
        """Arguments of ``python -m rlsweep`` that run exactly this point, in its sweep directory."""
        return [*self.overrides, f"hydra.run.dir='{self.run_dir}'", f"sweep_name={sweep_name}"]


def make_points(hydra_context: Any, config: DictConfig, job_overrides: Sequence[Sequence[str]]) -> list[Point]:
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    loader = hydra_context.config_loader
    points = []
    for i, overrides in enumerate(job_overrides):
        cfg = loader.load_sweep_config(config, list(overrides))
        choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v}
        rid = run_id(choices, list(overrides), int(cfg.seed), str(cfg.name))
        name = str(cfg.name) or config_name(choices)
        points.append(Point(i, rid, name, list(overrides), sweep_dir / rid, int(cfg.budget.total_steps)))
    return points


def record_sweep(sweep_dir: Path, launcher: str) -> None:
    """sweep.json: the command line and when; one file per sweep, rewritten on every launch."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    info = {"command": shlex.join(sys.argv), "launcher": launcher, "launched": time.time()}
    (sweep_dir / "sweep.json").write_text(json.dumps(info, indent=2) + "\n")


def select(points: list[Point], ledger: Ledger, only: str, local_host: str | None = None) -> list[Point]:
    """Record every point and return those to run now, printing why others are skipped."""
    if only not in ONLY_CHOICES:
        raise ValueError(f"hydra.launcher.only={only!r} is not allowed; allowed: {', '.join(ONLY_CHOICES)}")
    todo = []
    skipped: dict[str, int] = {}
    for p in points:
        record = ledger.plan(p.run_id, p.name, p.overrides, p.run_dir, p.total_steps)
        status = record["status"]
        alive = status == "running" and record.get("host") == local_host and pid_alive(int(record.get("pid", -1)))
        if status == "completed" or alive or (only == "failed" and status != "failed"):
            reason = "still running" if alive else status
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        todo.append(p)
    if skipped:
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        print(f"[rlsweep] skipping {sum(skipped.values())} point(s): {parts}", flush=True)
    return todo


def job_returns(points: list[Point], ledger: Ledger) -> list[JobReturn]:
    """Hydra's view of the results; failures are reported by the launcher itself, not raised here."""
    out = []
    for p in points:
        record = ledger.get(p.run_id) or {}
        ret = JobReturn(overrides=p.overrides, status=JobStatus.COMPLETED)
        ret._return_value = (record.get("result") or {}).get("episode/return")
        out.append(ret)
    return out


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


def status_table(ledger: Ledger, run_ids: Sequence[str] | None = None) -> str:
    """Points with status, attempts, progress, last metric and log path."""
    rows = [["run", "status", "attempts", "progress", "last metric", "job", "log"]]
    counts: dict[str, int] = {}
    for r in ledger.records():
        if run_ids is not None and r["run_id"] not in run_ids:
            continue
        run_dir = Path(r.get("run_dir", ledger.sweep_dir / r["run_id"]))
        last = last_metrics(run_dir)
        step = int(last.get("global_step", 0))
        total = int(r.get("total_steps") or 0)
        progress = f"{step}/{total} ({100 * step / total:.0f}%)" if total else "-"
        metric = "-"
        for key in ("episode/score", "episode/return", "explore/cells", "explore/rooms"):
            if last.get(key) is not None:
                metric = f"{key}={last[key]:.4g}"
                break
        status = r.get("status", "?")
        counts[status] = counts.get(status, 0) + 1
        rows.append([r["run_id"], status, str(r.get("attempts", 0)), progress, metric, str(r.get("job_id") or "-"),
                     str(r.get("log", "-"))])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no points")
    return "\n".join(lines)
