"""What the test suite costs, tracked like the training's speed: each tier's wall time and the slowest tests.

    python benchmarks/suite_time.py                      # the fast tier, then the full suite (the README's `pytest`)
    python benchmarks/suite_time.py --tiers fast         # one tier
    python benchmarks/suite_time.py --tiers full -- -n 3 # pytest options after --, for every tier

Each tier runs as its own ``python -m pytest`` (the fast tier is ``-m fast``, the full suite every test), with a JUnit
XML file that gives each test's time. Writes ``benchmarks/results/cpu-<N>core-<date>-suite-time.json``: the
machine (CPU model and vector extensions, cores, load average before and after), the commit, and per tier the wall
time, the counts and the 20 slowest tests (call plus its setup and teardown, as JUnit adds them). A tier that
fails is recorded with its counts, and the script exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from throughput import host_info

REPO = Path(__file__).resolve().parents[1]
TIERS = {"fast": ["-m", "fast"], "full": []}


def _commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or None


def run_tier(name: str, extra: list[str]) -> dict[str, Any]:
    """One tier: its wall time, counts and slowest tests from pytest's JUnit XML."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                   *TIERS[name], *extra]  # fmt: skip
        print(f"[suite_time] {name}: {' '.join(command[1:])}", flush=True)
        load_before = list(os.getloadavg())
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO)
        wall = time.perf_counter() - start
        load_after = list(os.getloadavg())
        cases = []
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if junit.exists():
            for case in ET.parse(junit).iter("testcase"):
                nodeid = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
                cases.append((float(case.get("time") or 0.0), nodeid))
                counts["tests"] += 1
                for kind, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
                    if case.find(kind) is not None:
                        counts[key] += 1
    cases.sort(reverse=True)
    print(f"[suite_time] {name}: {wall:.0f} s, exit {done.returncode}, {counts}", flush=True)
    return {
        "command": ["python", "-m", "pytest", *TIERS[name], *extra],
        "exit_status": done.returncode,
        "wall_s": round(wall, 1),
        **counts,
        "sum_of_test_times_s": round(sum(t for t, _ in cases), 1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "slowest": [{"test": nodeid, "s": round(t, 2)} for t, nodeid in cases[:20]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiers", default="fast,full", help="comma-separated, from: " + ", ".join(TIERS))
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (default: benchmarks/results/...)")
    parser.add_argument("--note", default="", help="what else ran on the machine, or anything a reader needs")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to every tier's pytest")
    args = parser.parse_args(argv)
    tiers = [t for t in args.tiers.split(",") if t]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        parser.error(f"--tiers {unknown[0]}: unknown tier; allowed: {', '.join(TIERS)}")
    started = dt.datetime.now()
    result: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "command": ["python", "benchmarks/suite_time.py", *(argv if argv is not None else sys.argv[1:])],
        "note": args.note,
        "machine": {
            **host_info(),
            "python": platform.python_version(),
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
        },
        "tiers": {name: run_tier(name, args.pytest_args) for name in tiers},
    }
    out = args.out or REPO / "benchmarks" / "results" / f"cpu-{os.cpu_count()}core-{started.date()}-suite-time.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[suite_time] wrote {out}")
    return 0 if all(t["exit_status"] == 0 for t in result["tiers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
