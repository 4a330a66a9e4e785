"""The learning curve of ``rlsweep eval --all-steps``: one evaluation per snapshot (``budget.keep_checkpoints``),
gathered into ``eval_curve.csv`` (one row per snapshot) and ``eval_curve.png`` (score, and rooms / cells where the
env counts them, against the training step).

The evaluations themselves are :func:`rlsweep.evaluation.playing.evaluate`'s, each in ``<out>/<step>/``; this module
only writes what they add up to.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.evaluation.results import Evaluation, label, per_episode

CURVE_FILE = "eval_curve.csv"
CURVE_COLUMNS = (
    "global_step",
    "iteration",
    "episodes",
    "score_per_episode_mean",
    "score_per_episode_std",
    "score_per_episode_min",
    "score_per_episode_max",
    "rooms_per_episode_mean",
    "rooms_per_episode_max",
    "cells_per_episode_mean",
    "cells_per_episode_max",
    "length_per_episode_mean",
    "time_limit_episodes",
    "checkpoint",
)


def curve_row(e: Evaluation) -> dict[str, Any]:
    """One row of ``eval_curve.csv``; rooms and cells are empty where the env does not count them."""
    s = e.summary
    row: dict[str, Any] = {"global_step": e.global_step, "iteration": e.iteration, "episodes": len(e.episodes)}
    score = per_episode("score")
    row.update({f"{score}_{k}": s[score][k] for k in ("mean", "std", "min", "max")})
    for key in (per_episode("rooms"), per_episode("cells")):
        row.update({f"{key}_{k}": s[key][k] if key in s else "" for k in ("mean", "max")})
    row[per_episode("length") + "_mean"] = s[per_episode("length")]["mean"]
    row["time_limit_episodes"] = sum(x.time_limit for x in e.episodes)
    row["checkpoint"] = e.checkpoint
    return row


def write_curve(results: Sequence[Evaluation], out_dir: Path) -> tuple[Path, Path]:
    """``eval_curve.csv`` (one row per snapshot) and ``eval_curve.png`` (score, and rooms / cells where counted)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    csv_path = out_dir / CURVE_FILE
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        writer.writerows(curve_row(e) for e in results)

    steps = np.array([e.global_step for e in results], dtype=float)
    panels = [(per_episode("score"), label(per_episode("score")) + "\n(game, unclipped)")]
    panels += [
        (name, label(name))
        for name in (per_episode("rooms"), per_episode("cells"))
        if all(name in e.summary for e in results)
    ]
    fig = Figure(figsize=(6.4, 2.6 * len(panels)), dpi=110)
    FigureCanvasAgg(fig)  # Agg canvas, no pyplot: works headless (as rlsweep.analysis.plots)
    for i, (key, ylabel) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        mean = np.array([e.summary[key]["mean"] for e in results])
        std = np.array([e.summary[key]["std"] for e in results])
        ax.plot(steps, mean, marker="o", label=f"mean over {len(results[0].episodes)} episodes")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2, label="± std")
        ax.plot(steps, [e.summary[key]["max"] for e in results], linestyle=":", marker=".", label="max")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_title(
                f"{results[0].run_id}: {results[0].policy} policy, eval seed {results[0].seed}\n"
                "per episode, not the run's cumulative explore/*",
                fontsize="medium",
            )
            ax.legend(fontsize="small")
    fig.axes[-1].set_xlabel("training step (global_step)")
    fig.tight_layout()
    png_path = out_dir / "eval_curve.png"
    fig.savefig(png_path)
    return csv_path, png_path
