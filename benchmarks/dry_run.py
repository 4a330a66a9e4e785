"""Time the dry run of a 1,000-point grid through the real command line (issue: preview under 2 s).

    python benchmarks/dry_run.py [--repeats 5]

Prints the median and spread of the wall time of ``python sweep.py -m seed=range(0,250) model=A,B,C,D
dry_run=true`` (interpreter start and imports included) and of the planning step alone.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRID = ["-m", "seed=range(0,250)", "model=A,B,C,D", "dry_run=true"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, str(REPO / "sweep.py"), *GRID], cwd=tmp, capture_output=True, text=True
            )
            walls.append(time.perf_counter() - t0)
            assert out.returncode == 0 and "1000 job(s)" in out.stdout, out.stderr

    from rlsweep.config.overrides import quote_group_values
    from rlsweep.launching.preflight import GROUPS, plan

    plans = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        p = plan(quote_group_values(GRID[1:], GROUPS), multirun=True)
        plans.append(time.perf_counter() - t0)
        assert len(p.jobs) == 1000

    for label, xs in (("command line, end to end", walls), ("plan() alone", plans)):
        print(f"{label:28s} median {statistics.median(xs):.3f} s  min {min(xs):.3f}  max {max(xs):.3f}  (n={len(xs)})")


if __name__ == "__main__":
    main()
