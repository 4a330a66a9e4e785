"""The local launcher: every grid point as its own process, several at once, GPUs shared by slot.

Each point runs as ``python -m rlsweep.launching.job <run_dir>`` (no command line to parse, no Hydra): a
crash (or a SIGKILL) takes down only that point; its traceback lands in ``<run>/log.txt`` and its record says
failed, the others go on, and the sweep exits non-zero at the end. A point that another attempt holds (its
lock is live) is not started, and a job that finds it so at its start exits without touching it. GPUs are
split into slots (``runs_per_gpu`` per GPU); a run sees only its GPU through CUDA_VISIBLE_DEVICES. Without
GPUs the runs share the cores, each with an equal share of threads. Ctrl-C (or a SIGTERM to the launcher)
stops the running points, which record themselves as cancelled, and a rerun resumes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsweep.config.launchers import LocalSettings
from rlsweep.launching.job import EXIT_BUSY
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Point
from rlsweep.launching.points import status_table
from rlsweep.lock import live_holder
from rlsweep.record import RunRecord


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
    run_dir: Path
    proc: subprocess.Popen[bytes]
    slot: int


def parallelism(settings: LocalSettings, gpus: list[int], points: int) -> int:
    """Runs at once: as set; else one per GPU slot; else one per core (the demo's runs go side by side)."""
    if settings.max_parallel:
        return settings.max_parallel
    if gpus:
        return len(gpus) * settings.runs_per_gpu
    return max(1, min(points, os.cpu_count() or 1))


def run_local(points: list[Point], sweep_dir: Path, ledger: Ledger, settings: LocalSettings) -> None:
    """Run ``points`` to their ends; each record says how it ended."""
    gpus = settings.gpus if settings.gpus is not None else visible_gpus()
    slots: list[int | None] = [g for g in gpus for _ in range(settings.runs_per_gpu)] or [None]
    parallel = parallelism(settings, gpus, len(points))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending = list(points)
    running: list[_Running] = []
    last_progress = time.time()
    print(
        f"[rlsweep] {len(points)} point(s), {parallel} at a time"
        + (f" on GPUs {gpus} ({settings.runs_per_gpu} per GPU)" if gpus else f" on the CPU ({threads} thread(s) each)"),
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while pending or running:
            busy = {r.slot for r in running}
            while pending and len(running) < parallel:
                point = pending.pop(0)
                # Checked again right before the start: another launch may have started it since prepare().
                holder = live_holder(sweep_dir / point.run_id)
                if holder is not None:
                    print(f"[rlsweep] {point.run_id}: already running ({holder.describe()}); left alone", flush=True)
                    continue
                slot = next(i for i in range(parallel) if i not in busy)
                busy.add(slot)
                running.append(_start(point, sweep_dir, slot, slots, threads))
            time.sleep(0.2)
            for r in list(running):
                code = r.proc.poll()
                if code is None:
                    continue
                running.remove(r)
                _finished(r, code)
            if time.time() - last_progress >= settings.progress_every and running:
                last_progress = time.time()
                print(status_table(ledger, [p.run_id for p in points]), flush=True)
    except KeyboardInterrupt:
        print(f"\n[rlsweep] interrupted: stopping {len(running)} running point(s); a rerun resumes them", flush=True)
        _stop(running)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(running: list[_Running]) -> None:
    """SIGTERM each child (it records itself as cancelled at once), then wait for it; record what it could not."""
    for r in running:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
    for r in running:
        try:
            code = r.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            code = r.proc.wait()
        _finished(r, code)


def _finished(r: _Running, code: int) -> None:
    """Make the record tell how the process ended (a SIGKILLed child could not write it)."""
    if code == EXIT_BUSY:
        # Another attempt took the point between our check and the job's start; its record is its own.
        print(f"[rlsweep] {r.point.run_id}: already running elsewhere; left alone", flush=True)
        return
    record = RunRecord.read_or_none(r.run_dir)
    status = record.status if record else "?"
    try:
        if code == -signal.SIGTERM and record is not None and status in ("pending", "running"):
            record.update(
                status="cancelled", error="terminated by SIGTERM before the job could record it; rerun resumes it"
            )
            status = "cancelled"
        elif code != 0 and record is not None and status in ("pending", "running"):
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            record.update(status="failed", error=f"process {how}; see {record.log_path}")
            status = "failed"
    except OSError as e:  # a full disk: the lock, released or dead, still tells status that it stopped
        print(f"[rlsweep] {r.point.run_id}: could not record its end ({e})", flush=True)
        status = "stopped"
    print(f"[rlsweep] {r.point.run_id}: {status}", flush=True)


def _start(point: Point, sweep_dir: Path, slot: int, slots: list[int | None], threads: int) -> _Running:
    run_dir = sweep_dir / point.run_id
    env = dict(os.environ)
    gpu = slots[slot % len(slots)]
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    # Written before the start: once the child runs, it alone writes its record (with its own pid).
    RunRecord.read(run_dir).update(gpu=gpu, pid=None)
    cmd = [sys.executable, "-m", "rlsweep.launching.job", str(run_dir)]
    with open(run_dir / "log.txt", "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        # Its own session: a Ctrl-C in the launcher's terminal reaches the launcher, which stops the children
        # in order (SIGTERM, so each records itself) instead of every process dying at once.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    print(f"[rlsweep] start {point.run_id}" + (f" on GPU {gpu}" if gpu is not None else ""), flush=True)
    return _Running(point, run_dir, proc, slot)
