"""``rlsweep eval <run_dir>``: play a run's checkpoint for N episodes and write what a researcher looks at.

This package owns evaluating a trained agent after the fact: choosing the checkpoint (the latest, a snapshot by
``--step``, any file by ``--checkpoint``, or every snapshot with ``--all-steps``), rebuilding the env and the
policy from the run's own ``config.yaml`` with the builders training uses (:func:`rlsweep.config.files.load_config`,
:func:`rlsweep.envs.make_env`, :func:`rlsweep.models.build_policy`), playing complete episodes, and writing:

* ``eval.json``: checkpoint, global step, policy mode, seed; per episode the game score (raw, unclipped), the
  training return, the length, the rooms (where the env counts rooms: Montezuma, the maze), the cells (where the
  env counts cells: the maze) and whether the env's time limit (``env.max_episode_steps``) cut it; mean, std,
  min and max of each, named ``<what>_per_episode``.
* ``episode-<k>.mp4``: H.264 video of the first ``--video-episodes`` episodes, from the frames the agent sees.
* ``--all-steps``: the above per snapshot under ``<out>/<step>/``, plus ``eval_curve.csv`` and
  ``eval_curve.png`` (score, and rooms / cells where counted, against the training step).
* W&B (``--wandb``, or by default when the run logged to W&B): an eval run (``job_type="eval"``) in the training
  run's project and group with the video, score, rooms and length at ``global_step``.

Which module holds what, in the order a run of the command goes through them:

* :mod:`~rlsweep.evaluation.cli`: the argument parser and :func:`main` (``rlsweep eval``, ``python -m
  rlsweep.evaluation``).
* :mod:`~rlsweep.evaluation.checkpoints`: the run directory and which checkpoint files to evaluate; reading one.
* :mod:`~rlsweep.evaluation.playing`: rebuilding env and policy, playing the episodes, writing ``eval.json``.
* :mod:`~rlsweep.evaluation.video`: writing an episode's frames as an H.264 MP4.
* :mod:`~rlsweep.evaluation.results`: the :class:`Episode` / :class:`Evaluation` records, their summary and the
  ``*_per_episode`` names (why those names: its docstring).
* :mod:`~rlsweep.evaluation.curve`: ``eval_curve.csv`` and ``eval_curve.png`` of ``--all-steps``.
* :mod:`~rlsweep.evaluation.wandb_run`: the W&B eval run.
* :mod:`~rlsweep.evaluation.errors`: :class:`BadInput` (no such run, no checkpoint, a step without a snapshot, an
  unreadable file), which the command prints as one line on stderr naming the value and what exists, exit
  status 2.

torch, the envs, matplotlib, imageio-ffmpeg and W&B are imported inside the functions that use them, so importing
this package stays cheap (numpy and the run record only). Every name below is importable from here, as it was from
the single module this package replaced.
"""

from rlsweep.evaluation.checkpoints import RunInfo, choose_checkpoints, open_run
from rlsweep.evaluation.cli import main, parser
from rlsweep.evaluation.curve import CURVE_COLUMNS, CURVE_FILE, curve_row, write_curve
from rlsweep.evaluation.errors import EXIT_BAD_INPUT, BadInput
from rlsweep.evaluation.playing import POLICIES, evaluate, play
from rlsweep.evaluation.results import PER_EPISODE, Episode, Evaluation, label, per_episode, per_episode_note, summarise
from rlsweep.evaluation.video import VIDEO_SIDE, write_video
from rlsweep.evaluation.wandb_run import log_to_wandb

__all__ = [
    "CURVE_COLUMNS",
    "CURVE_FILE",
    "EXIT_BAD_INPUT",
    "PER_EPISODE",
    "POLICIES",
    "VIDEO_SIDE",
    "BadInput",
    "Episode",
    "Evaluation",
    "RunInfo",
    "choose_checkpoints",
    "curve_row",
    "evaluate",
    "label",
    "log_to_wandb",
    "main",
    "open_run",
    "parser",
    "per_episode",
    "per_episode_note",
    "play",
    "summarise",
    "write_curve",
    "write_video",
]
