"""Which run and which checkpoints ``rlsweep eval`` evaluates, and reading them.

:func:`open_run` reads the run directory's typed ``config.yaml`` and its record; :func:`choose_checkpoints` turns
the options into checkpoint files: the latest (``checkpoint.pt``, by default), a snapshot by ``--step``, any file
by ``--checkpoint``, or every snapshot with ``--all-steps``; :func:`load_state` reads one checkpoint's policy and
step. What the user named must exist: anything else is :class:`~rlsweep.evaluation.errors.BadInput` that says what
does exist (the snapshots' steps, the latest checkpoint's step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlsweep.evaluation.errors import BadInput, few, first_line
from rlsweep.rundir.record import CHECKPOINT_NAME, RunRecord


@dataclass
class RunInfo:
    run_dir: Path
    run_id: str
    cfg: Any  # rlsweep.config.Config (typed, from config.yaml)
    record: RunRecord | None


def open_run(run_dir: Path) -> RunInfo:
    """The run's typed config and record; a path that is not a run directory is :class:`BadInput`."""
    from rlsweep.config.files import CONFIG_FILE, load_config

    if not run_dir.is_dir():
        raise BadInput(f"run directory {run_dir} does not exist")
    if not (run_dir / CONFIG_FILE).is_file():
        runs = sorted(p.parent.name for p in run_dir.glob(f"*/{CONFIG_FILE}"))
        what = (
            f"it is a sweep directory; its runs: {few(runs)}"
            if runs
            else "a run directory holds config.yaml, run.json and checkpoint.pt"
        )
        raise BadInput(f"{run_dir} is not a run directory: no {CONFIG_FILE} ({what})")
    try:
        cfg = load_config(run_dir)
    except Exception as e:  # a damaged or foreign config.yaml: say which and why, in one line
        raise BadInput(f"{run_dir / CONFIG_FILE} cannot be loaded ({first_line(e)})") from None
    record = RunRecord.read_or_none(run_dir)
    return RunInfo(run_dir, record.run_id if record else run_dir.name, cfg, record)


def load_state(path: Path) -> dict[str, Any]:
    """The checkpoint's policy, step and iteration. Memory-mapped: the optimiser's and the motivation's tensors are
    never read."""
    from rlsweep.training.checkpoint import CheckpointError, read_checkpoint

    try:
        state = read_checkpoint(path, "cpu", mmap=True)
    except CheckpointError as e:
        raise BadInput(str(e)) from None
    if not isinstance(state, dict) or "policy" not in state or "global_step" not in state:
        raise BadInput(f"{path} is not an rlsweep checkpoint (it has no policy and global_step)")
    return state


def choose_checkpoints(run: RunInfo, step: int | None, checkpoint: Path | None, all_steps: bool) -> list[Path]:
    """The checkpoint files to evaluate, in step order; what the options name must exist."""
    from rlsweep.training.checkpoint import SNAPSHOT_DIR, list_snapshots

    snapshots = list_snapshots(run.run_dir)
    latest = run.run_dir / CHECKPOINT_NAME
    known = (
        f"snapshots at steps {few(list(snapshots))}"
        if snapshots
        else f"no snapshots in {run.run_dir / SNAPSHOT_DIR} (budget.keep_checkpoints was 0)"
    )
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise BadInput(f"--checkpoint {checkpoint}: no such file")
        return [checkpoint]
    if all_steps:
        if not snapshots:
            raise BadInput(f"--all-steps: {known}; rerun training with budget.keep_checkpoints=K to keep them")
        return list(snapshots.values())
    if step is not None:
        if step in snapshots:
            return [snapshots[step]]
        # The latest checkpoint may be of the step asked for (it is a snapshot only every K-th interval).
        latest_step = int(load_state(latest)["global_step"]) if latest.is_file() else None
        if latest_step == step:
            return [latest]
        where = f"latest checkpoint at step {latest_step}" if latest_step is not None else "no checkpoint.pt"
        raise BadInput(f"--step {step}: no checkpoint of that step in {run.run_dir}; {known}; {where}")
    if not latest.is_file():
        raise BadInput(
            f"no checkpoint in {run.run_dir} ({CHECKPOINT_NAME} is written every budget.checkpoint_every "
            f"iterations; the run has not reached its first yet); {known}"
        )
    return [latest]
