"""A job is a plain function: ``run_point(run_dir)`` trains the run that ``<run_dir>/config.yaml`` describes.

The launcher composed and checked the point and wrote its resolved ``config.yaml`` and its record
(``run.json``); the job loads that file and nothing else: no command line, no Hydra, no second composition.
The local launcher starts it as ``python -m rlsweep.launching.job <run_dir>``, SLURM runs it as the callable
handed to submitit, the tests call it in-process. With ``seeds_per_process=k`` a job is up to k seeds of one
configuration, ``run_points(run_dirs)``, trained together in one process (:func:`rlsweep.training.train_seeds`);
each is still its own run, with its own lock, record, metrics and checkpoint.

The job first takes the point's lock (:mod:`rlsweep.rundir.lock`; every point's, for several), so a point never trains
twice at once, then keeps its record true: running (with host, pid and scheduler job id) when it starts, completed when
the budget is reached, failed with the error otherwise. An interruption from outside records itself first:
SIGTERM (``scancel``, ``kill``) as cancelled, the scheduler's preemption signal as preempted (in
:mod:`rlsweep.launching.slurm`); both resume from the last checkpoint when the point runs again.
"""

from __future__ import annotations

import errno
import signal
import sys
import traceback
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rlsweep.config import Config
from rlsweep.config.files import read_config, typed_config
from rlsweep.config.fingerprint import differences, fingerprint, training_config, without_seed
from rlsweep.rundir.lock import LockHeld, LockLost, PointLock
from rlsweep.rundir.record import RecordWriteError, RunRecord, amend, job_identity, record_lock

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # a full filesystem or quota: the run stops in one line, resumable
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: the point is running elsewhere; try again later
# Metrics kept in the record of a completed run (timings and losses stay in metrics.jsonl).
_NOT_FINAL = ("perf/time", "loss/")


def run_point(run_dir: Path) -> dict[str, Any]:
    """Train the point in ``run_dir`` to its budget (resuming its checkpoint); returns the final metrics.

    The point's lock comes first (:mod:`rlsweep.rundir.lock`): a second attempt while one is alive, from
    whatever launcher, raises :class:`LockHeld` before it has touched anything of the run.
    """
    (result,) = run_points([run_dir])
    return result


class SeedsDiverged(RuntimeError):
    """Some seeds trained together diverged (each is recorded failed with its own error); the others completed."""


def run_points(run_dirs: Sequence[Path], log: str | None = None) -> list[dict[str, Any]]:
    """Train the points in ``run_dirs`` -- one, or seeds of one configuration together in this process
    (``seeds_per_process``) -- to their budgets, each resuming its own checkpoint; returns their final metrics.
    ``log``: the job's log file where a scheduler keeps it, written into each record as the job starts.

    Every point's lock comes first: if another live attempt holds any of them, :class:`LockHeld` is raised
    before anything of any run is touched. A seed that diverges is recorded failed and the others train on;
    then its :class:`~rlsweep.training.loop.DivergenceError` is raised (several: :class:`SeedsDiverged`).
    """
    dirs = [Path(d).absolute() for d in run_dirs]
    identity = job_identity()
    if log is not None:
        identity["log"] = log
    locks: list[PointLock] = []
    try:
        for run_dir in dirs:
            lock = PointLock(run_dir, identity["job_id"])
            lock.acquire()
            locks.append(lock)
        # Read only now, under the record's lock: a launcher rewrites a point's config.yaml and record (a restart,
        # a change) only while nobody holds the point, in one stretch under that lock (rlsweep.rundir.record).
        raws = []
        for run_dir in dirs:
            with record_lock(run_dir):
                raws.append(read_config(run_dir))
        check_one_configuration(dirs, raws)
        return _run_locked(dirs, raws, locks, identity)
    finally:
        for lock in locks:
            lock.release()


def check_one_configuration(dirs: list[Path], raws: list[dict[str, Any]]) -> None:
    """Points trained in one process must differ in their seed only (the launcher groups them so)."""
    first = without_seed(raws[0])
    for run_dir, raw in zip(dirs[1:], raws[1:], strict=True):
        if without_seed(raw) != first:
            diff = differences(training_config(raws[0]), training_config(raw)) or "keys other than training ones"
            raise ValueError(f"{run_dir.name} is not a seed of {dirs[0].name}'s configuration ({diff}); points "
                             "trained in one process may differ in their seed only")  # fmt: skip


def _run_locked(
    dirs: list[Path], raws: list[dict[str, Any]], locks: list[PointLock], identity: dict[str, Any]
) -> list[dict[str, Any]]:
    results: dict[Path, dict[str, Any]] = {}
    todo: list[tuple[Path, Config, dict[str, Any]]] = []
    for run_dir, raw in zip(dirs, raws, strict=True):
        cfg = typed_config(raw)
        with record_lock(run_dir):
            record = RunRecord.read(run_dir)
            if record.status == "completed" and record.global_step >= cfg.budget.total_steps:
                # Finished by another attempt since this one was launched (a SLURM job queued before a local run).
                print(f"[{record.run_id}] already completed ({record.global_step} steps); nothing to do", flush=True)
                results[run_dir] = dict(record.final)
                continue
            record.attempts += 1
            record.update(status="running", error=None, **identity)
        info: dict[str, Any] = {
            "run_id": record.run_id,
            "name": record.name,
            "seed": record.seed,
            "sweep": record.sweep,
            "choices": record.choices,
            "overrides": record.overrides,
            "total_steps": record.total_steps,
        }
        info["training"] = training_config(raw)
        info["fingerprint"] = fingerprint(raw)
        todo.append((run_dir, cfg, info))
    if todo:
        results.update(_train(todo, locks))
    return [results[run_dir] for run_dir in dirs]


def _train(todo: list[tuple[Path, Config, dict[str, Any]]], locks: list[PointLock]) -> dict[Path, dict[str, Any]]:
    from rlsweep.training import train_seeds  # imported here: torch and the envs are not needed to plan a sweep

    dirs = [run_dir for run_dir, _, _ in todo]

    def guard() -> None:
        for lock in locks:
            lock.check()

    previous_handler = signal.signal(signal.SIGTERM, partial(_terminated, dirs))
    try:
        outcomes = train_seeds([cfg for _, cfg, _ in todo], dirs, [info for _, _, info in todo], guard=guard)
    except LockLost:
        raise  # the points are another attempt's now: their records are not this one's to write
    except BaseException as e:
        for run_dir in dirs:
            record_failure(run_dir, e)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    results: dict[Path, dict[str, Any]] = {}
    failed: list[tuple[Path, BaseException]] = []
    for run_dir, outcome in zip(dirs, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            record_failure(run_dir, outcome)
            failed.append((run_dir, outcome))
        else:
            amend(run_dir, status="completed", error=None, final=final_metrics(outcome))
            results[run_dir] = outcome
    if len(dirs) == 1 and failed:
        raise failed[0][1]
    if failed:
        raise SeedsDiverged("; ".join(f"{run_dir.name}: {e}" for run_dir, e in failed)
                            + f" (the other {len(dirs) - len(failed)} seed(s) of the process completed)")  # fmt: skip
    return results


def final_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """What a completed run's record keeps of its last metrics line (timings and losses stay in metrics.jsonl)."""
    return {k: v for k, v in row.items() if not k.startswith(_NOT_FINAL)}


def _terminated(run_dirs: list[Path], signum: int, frame: Any) -> None:
    """SIGTERM (``scancel``, ``kill``): record it, then stop; the last checkpoint is where a rerun resumes.

    Recorded here, before raising: the exit may surface from inside torch as some other error.
    """
    for run_dir in run_dirs:
        # A requeue after preemption also ends with SIGTERM: the record already says preempted, keep it.
        amend(run_dir, lambda r: r.status != "preempted",
              status="cancelled", error="terminated by SIGTERM (scancel or kill); rerun resumes it")  # fmt: skip
    raise SystemExit(128 + signum)


def record_failure(run_dir: Path, e: BaseException) -> None:
    """Record how the run ended when it did not complete.

    A preemption (submitit's USR2 handler) records itself first, then raises inside whatever ran at that
    moment; inside torch (a checkpoint being written, say) that exit surfaces as an ordinary error. The
    interruption is what happened: keep its record, so a rerun resumes. A SIGTERM is a cancellation.
    """
    interrupted = isinstance(e, KeyboardInterrupt)
    try:
        amend(run_dir, lambda r: r.status not in ("preempted", "cancelled"),
              status="cancelled" if interrupted else "failed",
              error="interrupted (Ctrl-C); rerun resumes it" if interrupted else error_summary(e))  # fmt: skip
    except OSError as write_error:
        # A full disk can refuse the record too: say so; the lock's end makes status show the run as stopped.
        print(f"rlsweep: {run_dir.name}: could not record the failure ({write_error})", file=sys.stderr, flush=True)


def error_summary(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def main(argv: list[str] | None = None) -> int:
    """``python -m rlsweep.launching.job <run_dir> [<run_dir> ...]``: how the local launcher starts a job (several
    run directories: seeds of one configuration trained in one process)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m rlsweep.launching.job <run_dir> [<run_dir> ...]", file=sys.stderr)
        return 2
    return run_points_reporting([Path(a) for a in args])


def run_point_reporting(run_dir: Path) -> int:
    return run_points_reporting([run_dir])


def run_points_reporting(run_dirs: Sequence[Path]) -> int:
    """``run_points`` for a command line: an end the run explains itself (divergence, an unreadable checkpoint, a
    full disk) is one line on stderr and exit status 1, not a traceback; anything else keeps its traceback. A point that
    another live attempt holds is one line and :data:`EXIT_BUSY`: nothing of it was touched."""
    from rlsweep.training.checkpoint import CheckpointError
    from rlsweep.training.loop import DivergenceError

    names = ", ".join(Path(d).name for d in run_dirs)
    try:
        run_points(run_dirs)
    except LockHeld as e:
        print(f"rlsweep: {e}", file=sys.stderr, flush=True)
        return EXIT_BUSY
    except SeedsDiverged as e:
        print(f"rlsweep: error: {e}", file=sys.stderr, flush=True)
        return 1
    except (DivergenceError, CheckpointError, LockLost) as e:
        print(f"rlsweep: {names}: error: {e}", file=sys.stderr, flush=True)
        return 1
    except OSError as e:
        if e.errno in DISK_FULL:
            print(f"rlsweep: {names}: error: {e}; free space, then rerun to resume from the last checkpoint",
                  file=sys.stderr, flush=True)  # fmt: skip
        elif isinstance(e, RecordWriteError):
            print(f"rlsweep: {names}: error: {e}; make it writable, then rerun to resume from the last checkpoint",
                  file=sys.stderr, flush=True)  # fmt: skip
        else:
            raise
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
