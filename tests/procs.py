"""Helpers for tests that start real processes: ``python sweep.py -m ...`` as a user types it, and what it leaves.

(tests import it: ``from procs import run, ledger, ...``)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["env=fake", "debug=smoke", "logger=none"]
ENV = {**os.environ, "WANDB_SILENT": "true"}


def cmd(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), "-m", *args]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd(*args), cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600)


def ledger(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The sweep's run records (``<run>/run.json``) by run id."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/run.json")}


def steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["global_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def paused(log: Path) -> bool:
    """The run checkpointed iteration ``debug.pause_at_iteration`` and now waits to be stopped (it says so)."""
    return log.exists() and "(debug.pause_at_iteration): waiting to be stopped" in log.read_text(errors="ignore")


def job_paused(sweep_dir: Path, run_id: str) -> bool:
    """``paused`` for a SLURM job: its log is where the record says, once the launcher has written it."""
    log = ledger(sweep_dir).get(run_id, {}).get("log")
    return bool(log) and paused(Path(log))


# 10 iterations of 64 agent steps; a run pauses after its checkpoint of iteration 4 until it is stopped from outside,
# so a test never races the end of the run it kills.
PAUSED = ["budget.total_steps=640", "budget.checkpoint_every=2", "debug.pause_at_iteration=4"]
STEPS = list(range(64, 640 + 1, 64))


def status(sweep_dir: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "status", str(sweep_dir)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def stop_leftovers(root: Path) -> None:
    """After a test: end whatever its sweeps left running (a failed assertion must not leave a paused run)."""
    import signal
    import subprocess as sp

    jobs: set[str] = set()
    for sweep_dir in (root / "sweeps").glob("*"):
        records = []
        for path in sweep_dir.glob("*/run.json"):
            with contextlib.suppress(ValueError):  # a test may have damaged one on purpose
                records.append(json.loads(path.read_text()))
        for record in records:
            if record.get("job_id"):
                jobs.add(str(record["job_id"]).split("_")[0])
            elif record.get("pid") and record.get("status") in ("pending", "running"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(record["pid"]), signal.SIGKILL)
    if jobs:
        sp.run(["scancel", *sorted(jobs)], capture_output=True, timeout=60)


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split())


# Tests that need the real one-node SLURM of launchers/slurm-local.sh (the README's test command and CI start it).
slurm = pytest.mark.skipif(
    not _slurm_up(), reason="no SLURM cluster is up: start the local one with `launchers/slurm-local.sh start`"
)
SLURM = ["hydra/launcher=slurm", "hydra.launcher.profile=local", "hydra.launcher.poll_every=1"]
