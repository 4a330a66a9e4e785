"""A shared cluster is touched lightly: the SLURM commands a waiting launcher runs, counted on the real one-node SLURM
of ``launchers/slurm-local.sh`` by wrappers put first on the launcher's PATH (benchmarks/slurm_calls.py measures the
same at the default poll of 30 s).
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from procs import ENV, REPO, TINY, cmd, ledger, slurm, stop_leftovers, wait_for

pytestmark = [pytest.mark.slurm]  # the real one-node SLURM of launchers/slurm-local.sh


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    stop_leftovers(tmp_path)


def _benchmark() -> ModuleType:
    """benchmarks/slurm_calls.py, whose wrappers and counting this test shares (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("slurm_calls", REPO / "benchmarks" / "slurm_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _benchmark()
counting_wrappers, calls = bench.wrappers, bench.calls


@pytest.mark.slurm
@slurm
def test_a_waiting_slurm_launcher_calls_squeue_once_per_poll_and_nothing_per_task(tmp_path: Path) -> None:
    """600 points in 2 arrays, held by a begin time an hour away so that none runs: submission is one sbatch and one
    ``scontrol release`` per array; while waiting, one squeue per ``poll_every`` and no sacct, scontrol or sbatch,
    however many tasks wait (benchmarks/slurm_calls.py: 2,000 tasks at the default poll). Not more tasks here: a
    cancelled task stays in the cluster's job table (MaxJobCount 10,000) for MinJobAge (600 s), beside the other
    SLURM tests' jobs."""
    points, arrays, poll, window = 600, 2, 2.0, 20.0
    log = tmp_path / "calls.log"
    wrappers = counting_wrappers(tmp_path / "bin", log)
    args = [*TINY, "budget=smoke", f"seed=range({points})", "sweep_name=calls",
            "hydra/launcher=slurm", "hydra.launcher.profile=local", f"hydra.launcher.poll_every={poll}",
            f"hydra.launcher.max_array_size={points // arrays}",
            "hydra.launcher.additional_parameters={begin:'now+3600'}"]  # fmt: skip
    env = {**ENV, "PATH": f"{wrappers}:{ENV['PATH']}"}
    t0 = time.time()
    launcher = bench.Stamped(cmd(*args), tmp_path, env)

    def submitted() -> list[float]:
        assert launcher.proc.poll() is None, launcher.text[-3000:]
        return [t for t, line in launcher.lines if "as SLURM array" in line][arrays - 1 :]

    try:
        waiting_from = wait_for(submitted, 300, "the arrays' submission")[0]
        time.sleep(window)
        waiting_to = time.time()
        launcher.proc.send_signal(signal.SIGINT)  # the jobs stay queued; a rerun would wait on them again
        # A bound, not a race: the launcher stops in the poll it is in (600 records read under their locks, an
        # squeue beside the other SLURM tests' jobs), which on a loaded CI machine took more than a minute once.
        launcher.proc.wait(timeout=300)
    finally:
        launcher.close()
    assert launcher.proc.returncode == 130, launcher.text[-3000:]
    records = ledger(tmp_path / "sweeps" / "calls")
    assert len(records) == points and {r["status"] for r in records.values()} == {"pending"}
    assert len({r["job_id"].split("_")[0] for r in records.values()}) == arrays

    at_submission = calls(log, t0, waiting_from)
    assert {k: len(v) for k, v in at_submission.items()} == {"squeue": 0, "sacct": 0, "scontrol": arrays,
                                                             "sbatch": arrays}  # fmt: skip
    waiting = calls(log, waiting_from, waiting_to)
    assert waiting["sacct"] == waiting["scontrol"] == waiting["sbatch"] == [], waiting
    polls = waiting["squeue"]
    # one per poll: each poll sleeps poll_every before its squeue, so starts are at least that far apart
    assert window / poll / 2 <= len(polls) <= window / poll + 1, polls
    assert min(b - a for a, b in itertools.pairwise(polls)) >= poll - 0.05, polls


def refusing_sbatch(folder: Path, after: int) -> Path:
    """An ``sbatch`` that submits ``after`` arrays to the real SLURM, then is refused as by a full cluster (the job
    table at MaxJobCount, a QOS submit limit): the refusal is what is tested, and a real one needs 10,000 jobs."""
    folder.mkdir()
    real, count = shutil.which("sbatch"), folder / "count"
    script = folder / "sbatch"
    script.write_text(
        f"#!/bin/sh\necho x >> '{count}'\nif [ $(wc -l < '{count}') -gt {after} ]; then\n"
        "  echo 'sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, "
        "user'\"'\"'s size and/or time limits)' >&2\n  exit 1\nfi\n"
        f"exec '{real}' \"$@\"\n"
    )
    script.chmod(0o755)
    return folder


@pytest.mark.slurm
@slurm
@pytest.mark.parametrize("after", [1, 0])
def test_a_refused_array_leaves_the_rest_pending_in_one_message_and_exit_1(tmp_path: Path, after: int) -> None:
    """Two points as two arrays (max_array_size=1), the cluster refusing after ``after`` arrays: the submitted one
    keeps its job, the other stays pending for a rerun, and the launch says so and exits 1; refused at the first,
    nothing is submitted and the error is one line."""
    args = [*TINY, "budget=smoke", "seed=1,2", "sweep_name=refused", "hydra/launcher=slurm",
            "hydra.launcher.profile=local", "hydra.launcher.max_array_size=1", "hydra.launcher.wait=false",
            "hydra.launcher.additional_parameters={begin:'now+3600'}"]  # fmt: skip
    env = {**ENV, "PATH": f"{refusing_sbatch(tmp_path / 'bin', after)}:{ENV['PATH']}"}
    out = subprocess.run(cmd(*args), cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    records = ledger(tmp_path / "sweeps" / "refused")
    submitted = sorted(r["run_id"] for r in records.values() if r.get("job_id"))
    assert len(submitted) == after and all(r["status"] == "pending" for r in records.values())
    if after:
        said = "[rlsweep] SLURM refused the submission of 1 point(s) (sbatch: error: Batch job submission failed: "
        assert said + "Job violates accounting/QOS policy" in out.stdout
        assert "1 were submitted; rerun the same command" in out.stdout and "Traceback" not in out.stderr
    else:
        lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("sbatch: error")]
        assert lines == [
            "rlsweep: error: SLURM refused the submission (sbatch: error: Batch job submission failed: "
            "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)); "
            "nothing was submitted; rerun the same command once the cluster takes jobs again"
        ], out.stderr
