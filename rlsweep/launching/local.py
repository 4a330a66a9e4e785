"""The local launcher: every grid point as its own process, several at once, GPUs shared by slot.

Each point runs as ``python -m rlsweep <its overrides> hydra.run.dir=<sweep>/<run>``: a crash (or a SIGKILL)
takes down only that point; its traceback lands in ``<run>/log.txt`` and its ledger record says failed, the
others go on, and the sweep exits non-zero at the end. GPUs are split into slots (``runs_per_gpu`` per GPU);
a run sees only its GPU through CUDA_VISIBLE_DEVICES. Without GPUs, ``max_parallel`` runs share the cores and
each gets an equal share of threads.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlsweep.config.launchers import LocalSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.points import Point, status_table


def visible_gpus() -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [int(x) for x in env.split(",") if x.strip().isdigit()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return list(range(sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))))


@dataclass
class _Running:
    point: Point
    proc: subprocess.Popen[bytes]
    slot: int
    started: float = field(default_factory=time.time)


def run_local(points: list[Point], sweep_name: str, ledger: Ledger, settings: LocalSettings) -> list[Point]:
    """Run ``points``; returns the ones that failed."""
    gpus = settings.gpus if settings.gpus is not None else visible_gpus()
    slots: list[int | None] = [g for g in gpus for _ in range(settings.runs_per_gpu)] or [None]
    parallel = settings.max_parallel or (len(slots) if gpus else 1)
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending = list(points)
    running: list[_Running] = []
    failed: list[Point] = []
    last_progress = time.time()
    print(
        f"[rlsweep] {len(points)} point(s), {parallel} at a time"
        + (f" on GPUs {gpus} ({settings.runs_per_gpu} per GPU)" if gpus else " on the CPU"),
        flush=True,
    )
    while pending or running:
        busy = {r.slot for r in running}
        while pending and len(running) < parallel:
            slot = next(i for i in range(max(parallel, 1)) if i not in busy)
            busy.add(slot)
            running.append(_start(pending.pop(0), slot, slots, sweep_name, ledger, threads))
        time.sleep(0.2)
        for r in list(running):
            code = r.proc.poll()
            if code is None:
                continue
            running.remove(r)
            record = ledger.get(r.point.run_id) or {}
            if code != 0:
                failed.append(r.point)
                if record.get("status") not in ("failed", "cancelled"):
                    # killed before it could record anything itself (SIGKILL, out of memory, ...)
                    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                    ledger.update(
                        r.point.run_id, status="failed", error=f"process {how}; see {r.point.run_dir}/log.txt"
                    )
            print(f"[rlsweep] {r.point.run_id}: {(ledger.get(r.point.run_id) or {}).get('status')}", flush=True)
        if time.time() - last_progress >= settings.progress_every and running:
            last_progress = time.time()
            print(status_table(ledger, [p.run_id for p in points]), flush=True)
    return failed


def _start(point: Point, slot: int, slots: list[int | None], sweep_name: str, ledger: Ledger, threads: int) -> _Running:
    point.run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    gpu = slots[slot % len(slots)]
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    cmd = [sys.executable, "-m", "rlsweep", *point.job_args(sweep_name)]
    log = open(point.run_dir / "log.txt", "ab")  # noqa: SIM115 - handed to the child, closed with it
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()  # the child holds its own descriptor
    ledger.update(point.run_id, status="running", host=socket.gethostname(), pid=proc.pid, gpu=gpu)
    print(f"[rlsweep] start {point.run_id}" + (f" on GPU {gpu}" if gpu is not None else ""), flush=True)
    return _Running(point, proc, slot)


def summary(ledger: Ledger, points: list[Point], failed: list[Point]) -> str:
    lines = [status_table(ledger, [p.run_id for p in points])]
    for p in failed:
        lines.append(f"FAILED {p.run_id}: {(ledger.get(p.run_id) or {}).get('error', '?')}")
    return "\n".join(lines)


def log_path(point: Point) -> Path:
    return point.run_dir / "log.txt"
