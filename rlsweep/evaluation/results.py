"""What an evaluation produces: the :class:`Episode` records, the :class:`Evaluation` that ``eval.json`` holds, and
their summary (mean, std, min, max of each per-episode number), with the names it goes by and the note saying what
the numbers are.

Every summarised number is named ``<what>_per_episode`` (``score_per_episode``, ``rooms_per_episode``,
``cells_per_episode``, ...; printed "cells per episode", logged ``eval/cells_per_episode_mean``): training logs
``explore/rooms`` and ``explore/cells`` as counts over the whole run (everything any of its envs visited since it
began), and an episode's count read beside them looked like the same measure, far too small. The curve
(:mod:`rlsweep.evaluation.curve`) and the W&B run (:mod:`rlsweep.evaluation.wandb_run`) take their names from
:func:`per_episode` here, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PER_EPISODE = "_per_episode"  # the suffix of every summarised number (see the module docstring for why)


def per_episode(key: str) -> str:
    """``cells`` -> ``cells_per_episode``: the name of an episode's number in the summary, the curve and W&B."""
    return key + PER_EPISODE


def label(name: str) -> str:
    """``cells_per_episode`` -> ``cells per episode``: the name as the console and the plot print it."""
    return name.replace("_", " ")


@dataclass
class Episode:
    """One complete episode, in evaluation order (slot ``slot`` plays episodes slot, slot + envs, ...)."""

    episode: int
    slot: int
    score: float  # raw game score, unclipped (the training reward may be binary)
    episode_return: float  # sum of the training reward
    length: int  # agent steps
    rooms: int | None  # distinct rooms of this episode, where the env counts rooms (else None)
    cells: int | None  # distinct cells of this episode, where the env counts cells (the maze; else None)
    time_limit: bool  # cut by env.max_episode_steps (it still counts)


@dataclass
class Evaluation:
    """Everything ``eval.json`` holds for one checkpoint."""

    run_dir: str
    run_id: str
    env: str
    checkpoint: str
    global_step: int
    iteration: int
    policy: str
    seed: int
    device: str
    envs: int
    time_limit_steps: int
    episodes: list[Episode]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    videos: list[dict[str, Any]] = field(default_factory=list)
    frames: str = ""  # what the video frames are
    note: str = ""  # what the summary's numbers are (per_episode_note), for whoever opens eval.json alone
    seconds: float = 0.0

    def line(self) -> str:
        """The one-line console summary."""
        s = self.summary
        cut = sum(e.time_limit for e in self.episodes)
        parts = [
            f"eval {self.run_id} step {self.global_step} {self.policy}: {len(self.episodes)} episodes"
            + (f" ({cut} cut by the time limit of {self.time_limit_steps} steps)" if cut else "")
        ]
        for key in ("score", "rooms", "cells", "length"):
            name = per_episode(key)
            if name in s:
                parts.append(f"{label(name)} " + _describe(s[name]))
        return ", ".join(parts)


def per_episode_note(policy: str, summary: dict[str, dict[str, float]], episodes: int) -> str:
    """One line saying what the summary's numbers are, naming the training run's cumulative counters they must not
    be read against (those the env counts)."""
    play = "greedy play" if policy == "greedy" else "sampled play (the training policy)"
    text = f"per episode of {play}: mean ± std [min, max] over {episodes} episodes"
    counted = [k for k in ("rooms", "cells") if per_episode(k) in summary]
    if counted:
        text += (
            f", {' and '.join(counted)} counted from each episode's start; not the run's cumulative "
            f"{' and '.join('explore/' + k for k in counted)} (everything the run's envs visited since it began)"
        )
    return text


def _describe(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4g} ± {stats['std']:.3g} [{stats['min']:.4g}, {stats['max']:.4g}]"


def summarise(episodes: Sequence[Episode]) -> dict[str, dict[str, float]]:
    """mean, std (population), min, max of each per-episode number the env reports, under its per-episode name
    (``score_per_episode``, ...)."""
    columns: dict[str, list[float]] = {
        "score": [e.score for e in episodes],
        "return": [e.episode_return for e in episodes],
        "length": [float(e.length) for e in episodes],
    }
    # rooms and cells only where every episode has them: the env counts them or it does not.
    for key in ("rooms", "cells"):
        values = [getattr(e, key) for e in episodes]
        if values and all(v is not None for v in values):
            columns[key] = [float(v) for v in values]
    return {
        per_episode(key): {
            "mean": float(np.mean(v)),
            "std": float(np.std(v)),
            "min": float(np.min(v)),
            "max": float(np.max(v)),
        }
        for key, v in columns.items()
    }
