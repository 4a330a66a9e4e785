"""The command line of ``rlsweep eval``: its argument parser and :func:`main`, which turns the options into
checkpoints to evaluate (:mod:`~rlsweep.evaluation.checkpoints`), plays each (:mod:`~rlsweep.evaluation.playing`),
prints what came out, and writes the curve (:mod:`~rlsweep.evaluation.curve`) and the W&B run
(:mod:`~rlsweep.evaluation.wandb_run`) where asked.

``rlsweep eval`` (:mod:`rlsweep.cli.commands`) and ``python -m rlsweep.evaluation`` both call :func:`main`. Bad
input (:class:`~rlsweep.evaluation.errors.BadInput`, and argparse's own refusals) is one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rlsweep.evaluation.checkpoints import choose_checkpoints, load_state, open_run
from rlsweep.evaluation.curve import write_curve
from rlsweep.evaluation.errors import EXIT_BAD_INPUT, BadInput
from rlsweep.evaluation.playing import POLICIES, evaluate
from rlsweep.evaluation.results import Evaluation
from rlsweep.evaluation.wandb_run import log_to_wandb

# `rlsweep eval --help`'s description (the first paragraph of rlsweep.evaluation's docstring).
DESCRIPTION = "``rlsweep eval <run_dir>``: play a run's checkpoint for N episodes and write what a researcher looks at."


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # One line, like every other bad input of rlsweep (argparse would print the usage first).
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlsweep eval", description=DESCRIPTION)
    p.add_argument("run_dir", type=Path, help="the run directory (holds config.yaml and checkpoint.pt)")
    p.add_argument("--episodes", type=_positive, default=10, help="complete episodes to play (default 10)")
    p.add_argument(
        "--policy",
        choices=POLICIES,
        default="greedy",
        help="greedy: the action with the largest logit; sample: draw from the policy, as in training",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--step",
        type=int,
        default=None,
        help="evaluate the snapshot of this global step (checkpoints/step-<S>.pt, or the latest "
        "checkpoint if it is of that step)",
    )
    which.add_argument("--checkpoint", type=Path, default=None, help="evaluate this checkpoint file")
    which.add_argument(
        "--all-steps",
        action="store_true",
        help="evaluate every snapshot (budget.keep_checkpoints) and write eval_curve.csv / .png",
    )
    p.add_argument(
        "--video",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write an H.264 MP4 of the first --video-episodes episodes (default: on)",
    )
    p.add_argument("--video-episodes", type=_non_negative, default=1, help="episodes to film (default 1)")
    p.add_argument(
        "--fps",
        type=_positive,
        default=15,
        help="video frames per second (default 15: one per agent step is real time for Atari at frame skip 4)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default <run_dir>/eval/<step>-<policy>, or with --all-steps "
        "<run_dir>/eval/all-steps-<policy> with one folder per step)",
    )
    p.add_argument("--seed", type=_non_negative, default=0, help="eval seed: env seeds seed + slot, sampling draws")
    p.add_argument("--envs", type=_positive, default=8, help="episodes played side by side (default 8)")
    p.add_argument("--device", default="auto", help="auto (cuda if present) | cpu | cuda | cuda:N")
    p.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="torch CPU threads (default 1: the batches are a few frames, and idle OpenMP threads that spin "
        "made a loaded 2-core machine 7x slower)",
    )
    p.add_argument(
        "--wandb",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log to W&B as an eval run in the training run's project and group (default: when the "
        "run's logger is W&B); offline without an API key or with WANDB_MODE=offline",
    )
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 0")
    return value


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return _main(args)
    except BadInput as e:
        print(f"rlsweep eval: error: {e}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT


def _main(args: argparse.Namespace) -> int:
    run = open_run(args.run_dir.absolute())
    paths = choose_checkpoints(run, args.step, args.checkpoint, args.all_steps)
    import torch

    from rlsweep.training.seeding import select_device

    try:
        device = select_device(args.device)
    except RuntimeError:
        raise BadInput(f"--device {args.device}: not a device (allowed: auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"--device {args.device}: no CUDA device here (torch sees none); use --device cpu")
    torch.set_num_threads(args.threads)
    results: list[Evaluation] = []
    if args.all_steps:
        base = args.out or run.run_dir / "eval" / f"all-steps-{args.policy}"
        for path in paths:
            state = load_state(path)
            result = evaluate(run, path, state, args, base / str(int(state["global_step"])))
            print(result.line(), flush=True)
            results.append(result)
        print(results[0].note, flush=True)
        csv_path, png_path = write_curve(results, base)
        print(f"eval curve of {len(results)} snapshots: {csv_path}, {png_path}", flush=True)
    else:
        (path,) = paths
        state = load_state(path)
        base = args.out or run.run_dir / "eval" / f"{int(state['global_step'])}-{args.policy}"
        result = evaluate(run, path, state, args, base)
        results.append(result)
        videos = f", video {result.videos[0]['path']}" if result.videos else ""
        print(f"{result.line()}; {base / 'eval.json'}{videos}", flush=True)
        print(result.note, flush=True)
    use_wandb = (
        args.wandb
        if args.wandb is not None
        else (run.cfg.logger.backend == "wandb" and run.cfg.logger.mode != "disabled")
    )
    if use_wandb:
        print(f"W&B eval run: {log_to_wandb(run, results, base)}", flush=True)
    return 0
