"""The local launcher: every job as its own process, several at once, GPUs shared by slot.

A job is one grid point, or with ``seeds_per_process=k`` up to k seeds of one configuration trained together
(:func:`rlsweep.launching.points.process_groups`); it runs as ``python -m rlsweep.launching.job <run_dir>
[<run_dir> ...]`` (no command line to parse, no Hydra) and takes one slot and one share of the threads, however
many seeds it trains. A crash (or a SIGKILL) takes down only that job: its traceback lands in the log of its
first point (``<run>/log.txt``; the records of all its points name that file), each of its points that had not
recorded its end is recorded failed, the other jobs go on, and the sweep exits non-zero at the end. A point that
another attempt holds (its lock is live) is not started, and a job that finds one of its points so at its start
exits without touching any. GPUs are split into slots (``runs_per_gpu`` per GPU); a job sees only its GPU
through CUDA_VISIBLE_DEVICES. Without GPUs the jobs share the cores, each with an equal share of threads.
Ctrl-C (or a SIGTERM to the launcher) stops the running jobs, whose points record themselves as cancelled, and
a rerun resumes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rlsweep.config.launchers import LocalSettings
from rlsweep.launching.job import EXIT_BUSY
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point
from rlsweep.launching.points import status_table
from rlsweep.rundir.lock import live_holder
from rlsweep.rundir.record import RunRecord, amend_unheld


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
    points: list[Point]  # one, or several seeds of one configuration trained in this one process
    run_dirs: list[Path]
    proc: subprocess.Popen[bytes]
    slot: int

    @property
    def names(self) -> str:
        return ", ".join(p.run_id for p in self.points)


def parallelism(settings: LocalSettings, gpus: list[int], jobs: int) -> int:
    """Jobs at once: as set; else one per GPU slot; else one per core (the demo's runs go side by side)."""
    if settings.max_parallel:
        return settings.max_parallel
    if gpus:
        return len(gpus) * settings.runs_per_gpu
    return max(1, min(jobs, os.cpu_count() or 1))


class LocalLauncher:
    """``hydra/launcher=local`` (the default): the jobs as processes of this machine; waits for all of them."""

    name = "local"

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings

    def run(self, p: Plan, groups: list[list[Point]], ledger: Ledger) -> bool:
        if groups:
            run_local(groups, p.out_dir, ledger, self.settings)
        print(status_table(ledger, [pt.run_id for pt in p.points]), flush=True)
        return True

    def reconcile(self, ledger: Ledger) -> None:
        """Nothing to do: a local job that dies is recorded by its launcher, or shows as stopped by its dead lock."""


LAUNCHER = LocalLauncher


def run_local(groups: list[list[Point]], sweep_dir: Path, ledger: Ledger, settings: LocalSettings) -> None:
    """Run each group of points (one process each) to its end; each point's record says how it ended."""
    gpus = settings.gpus if settings.gpus is not None else visible_gpus()
    slots: list[int | None] = [g for g in gpus for _ in range(settings.runs_per_gpu)] or [None]
    parallel = parallelism(settings, gpus, len(groups))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending = [list(g) for g in groups]
    points = [p for g in groups for p in g]
    running: list[_Running] = []
    last_progress = time.time()
    shared = f" in {len(groups)} process(es)" if len(groups) < len(points) else ""
    print(
        f"[rlsweep] {len(points)} point(s){shared}, {parallel} at a time"
        + (f" on GPUs {gpus} ({settings.runs_per_gpu} per GPU)" if gpus else f" on the CPU ({threads} thread(s) each)"),
        flush=True,
    )
    # Ctrl-C and SIGTERM only note the request; the loop acts on it at its next turn (within 0.2 s). An exception
    # raised wherever the signal lands (inside a print to the terminal, a record's write, subprocess's own
    # bookkeeping) could leave that half done, or keep the loop from stopping its children. Installed explicitly,
    # so a launcher started with SIGINT ignored (a background job of a script) still stops on one.
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        while (pending or running) and not stop:
            busy = {r.slot for r in running}
            while pending and len(running) < parallel and not stop:
                group = []
                for point in pending.pop(0):
                    # Checked again right before the start: another launch may have started it since prepare().
                    holder = live_holder(sweep_dir / point.run_id)
                    if holder is None:
                        group.append(point)
                    else:
                        print(f"[rlsweep] {point.run_id}: already running ({holder.describe()}); left alone",
                              flush=True)  # fmt: skip
                if not group:
                    continue
                slot = next(i for i in range(parallel) if i not in busy)
                busy.add(slot)
                running.append(_start(group, sweep_dir, slot, slots, threads))
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
        if stop:
            n = sum(len(r.points) for r in running)
            print(f"\n[rlsweep] interrupted: stopping {n} running point(s); a rerun resumes them", flush=True)
            _stop(running)
            raise KeyboardInterrupt
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(running: list[_Running]) -> None:
    """SIGTERM each child (its points record themselves as cancelled at once), then wait for it; record what it
    could not."""
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
    """Make every record of the job tell how its process ended (a SIGKILLed child could not write them)."""
    if code == EXIT_BUSY:
        # Another attempt took a point between our check and the job's start, and the job touched none of its
        # points: the taken one's record is its own; the others (several seeds in one job) wait for a rerun.
        if len(r.points) == 1:
            print(f"[rlsweep] {r.names}: already running elsewhere; left alone", flush=True)
        else:
            print(f"[rlsweep] {r.names}: one of them is already running elsewhere; none was started, a rerun "
                  "starts the others", flush=True)  # fmt: skip
        return
    pid = r.proc.pid

    def unrecorded(record: RunRecord) -> bool:
        # This job's end, not recorded by the job itself; and not another attempt's record (one that took the
        # point since: then its process, not ours, is in it).
        return record.status in ("pending", "running") and record.pid in (None, pid)

    for run_dir in r.run_dirs:
        record = RunRecord.read_or_none(run_dir)
        status = record.status if record else "?"
        try:
            if code == -signal.SIGTERM and record is not None and unrecorded(record):
                why = "terminated by SIGTERM before the job could record it; rerun resumes it"
                if amend_unheld(run_dir, unrecorded, status="cancelled", error=why):
                    status = "cancelled"
            elif code != 0 and record is not None and unrecorded(record):
                how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                if amend_unheld(run_dir, unrecorded, status="failed", error=f"process {how}; see {record.log_path}"):
                    status = "failed"
        except OSError as e:  # a full disk: the lock, released or dead, still tells status that it stopped
            print(f"[rlsweep] {run_dir.name}: could not record its end ({e})", flush=True)
            status = "stopped"
        print(f"[rlsweep] {run_dir.name}: {status}", flush=True)


def _start(points: list[Point], sweep_dir: Path, slot: int, slots: list[int | None], threads: int) -> _Running:
    run_dirs = [sweep_dir / p.run_id for p in points]
    env = dict(os.environ)
    gpu = slots[slot % len(slots)]
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    # One process writes one console stream, into the first point's log.txt; every record's `log` names that file
    # (status and failures point there), and the other points' log.txt say where it went, so a reader who opens
    # any run's log.txt finds the output. One file, not a copy per point: a copy would need the launcher to relay
    # the stream, and would stop when the launcher does.
    log_path = run_dirs[0] / "log.txt"
    cmd = [sys.executable, "-m", "rlsweep.launching.job", *map(str, run_dirs)]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    # Written before the start: once the child runs, it alone writes its record (with its own pid). Not while
    # another attempt holds the point (it took it since the check in run_local): the child then finds it held.
    written = [amend_unheld(run_dir, lambda _: True, gpu=gpu, pid=None, log=str(log_path)) for run_dir in run_dirs]
    for run_dir in run_dirs[1:]:
        with open(run_dir / "log.txt", "ab") as other:
            others = ", ".join(d.name for d in run_dirs if d != run_dir)
            other.write(f"\n=== {stamp} trained in one process with {others}; its output is in {log_path}\n".encode())
    with open(log_path, "ab") as log:
        log.write(f"\n=== {stamp} {' '.join(cmd)}\n".encode())
        log.flush()
        # Its own session: a Ctrl-C in the launcher's terminal reaches the launcher, which stops the children
        # in order (SIGTERM, so each records itself) instead of every process dying at once.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    names = ", ".join(p.run_id for p in points)
    # Seeds share a process only at the same progress (process_groups): the first record's step is all of theirs.
    step = written[0].global_step if written[0] is not None else 0
    what = f"resume {names} at step {step}" if step > 0 else f"start {names}"
    print(f"[rlsweep] {what}" + (" in one process" if len(points) > 1 else "")
          + (f" on GPU {gpu}" if gpu is not None else ""), flush=True)  # fmt: skip
    return _Running(points, run_dirs, proc, slot)
