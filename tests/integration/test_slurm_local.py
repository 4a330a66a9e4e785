"""``launchers/slurm-local.sh stop`` ends only what its ``start`` started, never another user's jobs or daemons.

Run against a directory of its own (``RLSWEEP_SLURM_DIR``) and a private /run/munge, so the one-node SLURM that
the other tests use is never touched: its PID files hold the PIDs of live decoy processes (what a stale PID file
points at once the PID is reused), and SLURM's commands on PATH are stand-ins that only log their calls.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare for a private /run/munge"
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "launchers" / "slurm-local.sh"


def test_stop_leaves_daemons_and_jobs_it_did_not_start(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("scancel", "squeue", "scontrol", "sinfo"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (bin_dir / tool).chmod(0o755)
    decoys = {name: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for name in "abcd"}
    try:
        run_dir = tmp_path / "slurm" / "run"
        run_dir.mkdir(parents=True)
        (run_dir / "slurmctld.pid").write_text(f"{decoys['a'].pid}\n")
        (run_dir / "slurmd.pid").write_text(f"{decoys['b'].pid}\n")
        (run_dir / "munged.started").write_text(f"{decoys['c'].pid}\n")
        # a munged this script did not start (a system one, another user's cluster): its PID file is not ours
        inner = (
            f"mount -t tmpfs tmpfs /run/munge && echo {decoys['d'].pid} > /run/munge/munged.pid && exec {SCRIPT} stop"
        )
        out = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", inner],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                "RLSWEEP_SLURM_DIR": str(run_dir.parent),
            },
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert not calls.exists() or "scancel" not in calls.read_text(), calls.read_text()
        assert {name: d.poll() for name, d in decoys.items()} == dict.fromkeys("abcd")  # all still running
    finally:
        for d in decoys.values():
            d.kill()
            d.wait()
