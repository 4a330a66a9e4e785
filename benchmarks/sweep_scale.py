"""How the launch path scales with the grid: all through the real command line, interpreter start included.

    python benchmarks/sweep_scale.py [--points 10000] [--start-points 1000] [--repeats 3] [--out results/x.json]

1. ``dry_run``: ``python sweep.py -m seed=range(..) model=A,B,C,D dry_run=true`` with ``--points`` points.
2. Rerun of a finished sweep: a ``--points`` sweep is planned and prepared (configs and records written, as a
   launch does), its records are marked completed, then the same command is run again; it must skip every
   point and exit 0.
3. First start of a ``--start-points`` local sweep: seconds from the command until the launcher prints its
   first ``start`` line; then the launcher is interrupted (Ctrl-C), which stops and records its children.

Targets (issue: the sweep shell): 10,000-point dry run <= 5 s; 10,000-point rerun <= 10 s; first job of a
1,000-point sweep <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]


def grid(points: int) -> list[str]:
    assert points % 4 == 0, "points must be a multiple of 4 (4 models x seeds)"
    return [f"seed=range(0,{points // 4})", "model=A,B,C,D"]


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), "-m", *args]


def timed(cmd: list[str], cwd: Path, expect: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    assert out.returncode == 0 and expect in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    return wall


def dry_run(points: int, cwd: Path) -> float:
    return timed(sweep_cmd(*grid(points), "dry_run=true"), cwd, f"{points} job(s)")


def finished_rerun(points: int, cwd: Path) -> float:
    """Prepare the sweep as a launch would, mark every record completed, time the rerun of the command."""
    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.plan import GROUPS, plan
    from rlsweep.launching.points import prepare
    from rlsweep.rundir.record import RunRecord

    args = [*grid(points), *TINY, "sweep_name=done"]
    p = plan(quote_group_values(args, GROUPS), multirun=True)
    p.out_dir = cwd / "sweeps" / "done"
    ledger = Ledger(p.out_dir)
    ledger.record_launch("local", len(p.points))
    for point in prepare(p, "local"):
        record = RunRecord.read(p.run_dir(point))
        record.global_step = point.total_steps
        record.update(status="completed")
    return timed(sweep_cmd(*args), cwd, f"skipping {points} point(s): {points} completed")


def first_start(points: int, cwd: Path) -> float:
    args = [*grid(points), *TINY, "sweep_name=start", "hydra.launcher.max_parallel=1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(sweep_cmd(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    wall = float("nan")
    for line in proc.stdout:
        if line.startswith("[rlsweep] start "):
            wall = time.perf_counter() - t0
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--start-points", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    out = args.out.absolute() if args.out else None

    results: dict[str, list[float]] = {"dry_run": [], "finished_rerun": [], "first_start": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            results["dry_run"].append(dry_run(args.points, cwd))
            results["finished_rerun"].append(finished_rerun(args.points, cwd))
            results["first_start"].append(first_start(args.start_points, cwd))
    labels = {
        "dry_run": f"dry run, {args.points} points",
        "finished_rerun": f"rerun of a finished {args.points}-point sweep",
        "first_start": f"first job start, {args.start_points}-point local sweep",
    }
    for key, xs in results.items():
        print(f"{labels[key]:48s} median {statistics.median(xs):6.2f} s  min {min(xs):6.2f}  max {max(xs):6.2f}  "
              f"(n={len(xs)})")  # fmt: skip
    if out:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        load = os.getloadavg()
        data = {"machine": machine, "load_before": load, "labels": labels, "seconds": results}
        out.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
