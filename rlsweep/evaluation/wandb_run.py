"""The W&B eval run of ``rlsweep eval`` (``--wandb``, or by default when the run logged to W&B).

One run with ``job_type="eval"`` in the training run's project and group, named ``<run>-eval-<policy>`` and tagged
like the training run plus ``eval``: per checkpoint, at its ``global_step``, the score / rooms / cells / length
statistics (``eval/<what>_per_episode_<stat>``), a table of the episodes and the videos. Offline without an API
key, under ``<out>/wandb/``. W&B is imported only here, and only when this runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlsweep.evaluation.checkpoints import RunInfo
from rlsweep.evaluation.results import Episode, Evaluation


def log_to_wandb(run: RunInfo, results: Sequence[Evaluation], out_dir: Path) -> str:
    """One W&B eval run (``job_type="eval"``) in the training run's project and group: per checkpoint, at its
    ``global_step``, the score / rooms / cells / length statistics, a table of the episodes and the videos.
    Returns where it went (the offline run directory, or the run's URL)."""
    import wandb

    from rlsweep.tracking import wandb_mode, wandb_tags

    cfg, record = run.cfg, run.record
    trained = (record.wandb if record else None) or {}
    logger_mode = cfg.logger.mode if cfg.logger.backend == "wandb" and cfg.logger.mode != "disabled" else "auto"
    # WANDB_MODE set by the user wins (offline on a node without network); otherwise the run's own rule.
    mode = os.environ.get("WANDB_MODE") or wandb_mode(logger_mode)
    info = {
        "choices": record.choices if record else {},
        "name": record.name if record else run.run_id,
        "seed": record.seed if record else cfg.seed,
        "git": record.git if record else {},
    }
    first = results[0]
    wb = wandb.init(
        project=trained.get("project") or cfg.logger.project,
        entity=trained.get("entity") or cfg.logger.entity,
        group=(record.sweep if record else "") or trained.get("group") or None,
        job_type="eval",
        name=f"{run.run_id}-eval-{first.policy}",
        dir=str(out_dir),
        mode=mode,  # type: ignore[arg-type]
        config={
            "run_id": run.run_id,
            "train_wandb_id": record.wandb_id if record else None,
            "env": first.env,
            "policy": first.policy,
            "seed": first.seed,
            "episodes": len(first.episodes),
            "checkpoints": [e.checkpoint for e in results],
            "note": first.note,
        },
        tags=[*wandb_tags(info), "eval"],
        settings=wandb.Settings(console="off", silent=True),
    )
    try:
        wb.define_metric("global_step")
        wb.define_metric("eval/*", step_metric="global_step")
        for e in results:
            row: dict[str, Any] = {"global_step": e.global_step}
            for key, stats in e.summary.items():
                row.update({f"eval/{key}_{k}": v for k, v in stats.items()})
            row["eval/time_limit_episodes"] = sum(x.time_limit for x in e.episodes)
            columns: list[str | int] = [f.name for f in Episode.__dataclass_fields__.values()]
            row["eval/episodes"] = wandb.Table(columns=columns, data=[list(asdict(x).values()) for x in e.episodes])
            for v in e.videos:
                row[f"eval/video_episode_{v['episode']}"] = wandb.Video(v["path"], format="mp4")
            wb.log(row, step=e.global_step)
        where = str(wb.url) if mode == "online" and wb.url else str(Path(wb.dir).parent)
    finally:
        wb.finish()
    return where
