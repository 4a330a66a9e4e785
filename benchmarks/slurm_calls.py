"""How lightly a waiting SLURM launcher touches the cluster: its squeue, sacct, scontrol and sbatch calls, counted.

    python benchmarks/slurm_calls.py [--points 2000] [--window 150] [--poll-every S] [--out results/x.json]

Needs a SLURM cluster (the one-node one of ``launchers/slurm-local.sh start`` will do). Wrappers named like the
four commands, first on the launcher's PATH, append ``<name> <unix time>`` to a file and exec the real command.
The benchmark launches ``--points`` points (``env=fake budget=smoke debug=smoke logger=none``, one seed each) with
``hydra.launcher.wait=true`` and the launcher's default ``poll_every`` (30 s) unless ``--poll-every`` is given; the
tasks are held by a begin time an hour away, so the whole array waits and none runs. After ``--window`` seconds of
waiting the launcher is stopped with SIGINT (the jobs stay queued) and exactly this run's arrays are cancelled.

Reported: the calls at submission (per kind), the calls while waiting (per kind, per minute, and the most in any
30 s), the gaps between squeue calls, the number of tasks and arrays, the machine and the SLURM version.
Target (issue #27): at most one call of each kind per 30 s while waiting, whatever the number of tasks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("squeue", "sacct", "scontrol", "sbatch")
TINY = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]


def wrappers(folder: Path, log: Path) -> Path:
    folder.mkdir()
    for name in COMMANDS:
        real = shutil.which(name)
        assert real is not None, f"{name} is not on PATH: is SLURM installed?"
        script = folder / name
        script.write_text(f"#!/bin/sh\nprintf '%s %s\\n' {name} \"$(date +%s.%N)\" >> '{log}'\nexec '{real}' \"$@\"\n")
        script.chmod(0o755)
    return folder


def calls(log: Path, start: float, end: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for line in log.read_text().splitlines() if log.exists() else []:
        name, at = line.split()
        if start <= float(at) < end:
            out[name].append(float(at))
    return out


def most_in(times: list[float], span: float) -> int:
    """The most calls that started within any ``span`` seconds."""
    return max((sum(1 for u in times if t <= u < t + span) for t in times), default=0)


class Stamped:
    """A process started with its output (stdout and stderr) read by a thread, each line with the time it came."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line))

    @property
    def text(self) -> str:
        return "".join(line for _, line in self.lines)

    def close(self) -> None:
        """Kill the process if it still runs, and take the rest of its output."""
        self.proc.kill()
        self._reader.join(timeout=10)


def measure(points: int, window: float, poll_every: float | None, cwd: Path) -> dict[str, Any]:
    log = cwd / "calls.log"
    path = wrappers(cwd / "bin", log)
    args = [*TINY, f"seed=range({points})", "sweep_name=calls", "hydra/launcher=slurm", "hydra.launcher.profile=local",
            "hydra.launcher.wait=true", "hydra.launcher.additional_parameters={begin:'now+3600'}"]  # fmt: skip
    if poll_every is not None:
        args.append(f"hydra.launcher.poll_every={poll_every}")
    env = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}", "WANDB_SILENT": "true"}
    t0 = time.time()
    launcher = Stamped([sys.executable, str(REPO / "sweep.py"), "-m", *args], cwd, env)
    proc, lines = launcher.proc, launcher.lines
    arrays: list[str] = []
    try:
        # waiting from the last array's "submitted ... as SLURM array N" (hydra.launcher.max_array_size=1000)
        expected = -(-points // 1000)
        while proc.poll() is None and sum("as SLURM array" in line for _, line in lines) < expected:
            time.sleep(0.1)
        submitted = [(t, line) for t, line in lines if "as SLURM array" in line]
        arrays = [line.split()[-1] for _, line in submitted]
        # a cluster whose job table is full (MaxJobCount, cancelled tasks counted for MinJobAge) refuses an array
        assert proc.poll() is None and len(arrays) == expected, launcher.text[-3000:]
        waiting_from = submitted[-1][0]
        time.sleep(max(0.0, waiting_from + window - time.time()))
        waiting_to = time.time()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        launcher.close()
        if arrays:
            subprocess.run(["scancel", *arrays], capture_output=True, timeout=60)
    at_submission = calls(log, t0, waiting_from)
    waiting = calls(log, waiting_from, waiting_to)
    squeue = waiting["squeue"]
    version = subprocess.run(["sbatch", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "points": points,
        "tasks": points,
        "arrays": len(arrays),
        "poll_every_s": poll_every if poll_every is not None else "default",
        "slurm": version,
        "launcher_exit": proc.returncode,
        "submission": {
            "seconds": round(waiting_from - t0, 2),
            "calls": {k: len(v) for k, v in at_submission.items()},
        },
        "waiting": {
            "seconds": round(waiting_to - waiting_from, 2),
            "calls": {k: len(v) for k, v in waiting.items()},
            "calls_per_minute": {k: round(len(v) * 60 / (waiting_to - waiting_from), 2) for k, v in waiting.items()},
            "most_in_any_30s": {k: most_in(v, 30.0) for k, v in waiting.items()},
            "squeue_gaps_s": [round(b - a, 2) for a, b in itertools.pairwise(squeue)],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--window", type=float, default=150.0, help="seconds of waiting measured")
    parser.add_argument("--poll-every", type=float, default=None, help="default: the launcher's own (30 s)")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    out = args.out.absolute() if args.out else None
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.points, args.window, args.poll_every, Path(tmp))
    data = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_before": load,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        **result,
    }
    print(json.dumps(data, indent=2))
    worst = max(data["waiting"]["most_in_any_30s"].values())
    print(f"waiting: at most {worst} call(s) of one kind in any 30 s (target <= 1)")
    if out:
        out.write_text(json.dumps(data, indent=2) + "\n")
    sys.exit(0 if worst <= 1 else 1)


if __name__ == "__main__":
    main()
