"""``rlsweep eval <run_dir>``: play a run's checkpoint for N episodes and write what a researcher looks at.

This module owns evaluating a trained agent after the fact: choosing the checkpoint (the latest, a snapshot by
``--step``, any file by ``--checkpoint``, or every snapshot with ``--all-steps``), rebuilding the env and the
policy from the run's own ``config.yaml`` with the builders training uses (:func:`rlsweep.config.files.load_config`,
:func:`rlsweep.envs.make_env`, :func:`rlsweep.models.build_policy`), playing complete episodes, and writing:

* ``eval.json``: checkpoint, global step, policy mode, seed; per episode the game score (raw, unclipped), the
  training return, the length, the rooms (where the env counts rooms: Montezuma, the maze), the cells (where the
  env counts cells: the maze) and whether the env's time limit (``env.max_episode_steps``) cut it; mean, std,
  min and max of each. An episode cut by the time limit counts like any other (it is flagged).
* ``episode-<k>.mp4``: H.264 video of the first ``--video-episodes`` episodes, from the frames the agent sees
  (the newest frame of each observation, scaled up by whole pixels so it is watchable; no backend here renders
  a separate RGB picture cheaply), one frame per agent step: s_0 ... s_{T-1} (with same-step autoreset the
  frame after the last action is already the next episode's first, so an episode of T steps has T frames).
* ``--all-steps``: the above per snapshot under ``<out>/<step>/``, plus ``eval_curve.csv`` and
  ``eval_curve.png`` (score, and rooms / cells where counted, against the training step).
* W&B (``--wandb``, or by default when the run logged to W&B): an eval run (``job_type="eval"``) in the training
  run's project and group with the video, score, rooms and length at ``global_step``; offline without an API
  key, under ``<out>/wandb/``. W&B is imported only then.

Every summarised number is named ``<what>_per_episode`` (``score_per_episode``, ``rooms_per_episode``,
``cells_per_episode``, ...; printed "cells per episode", logged ``eval/cells_per_episode_mean``): training logs
``explore/rooms`` and ``explore/cells`` as counts over the whole run (everything any of its envs visited since it
began), and an episode's count read beside them looked like the same measure, far too small.

Episodes are played by ``--envs`` single-env instances side by side (one batched forward pass per step). One
instance per slot, not one vectorised env, so that each slot plays exactly its share of episodes one after the
other (no bias towards short episodes), and so that the env's own exploration counters, cleared at each
episode's start, count that one episode's rooms and cells. Env seeds are ``--seed + slot``; greedy play with one
seed repeats exactly, and so does sampling (its draws come from a generator seeded with ``--seed``).

Bad input (no such run, no checkpoint, a step without a snapshot, an unreadable file) is one line on stderr
naming the value and what exists, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.record import CHECKPOINT_NAME, RunRecord

EXIT_BAD_INPUT = 2
POLICIES = ("greedy", "sample")
VIDEO_SIDE = 256  # frames are scaled up by a whole factor until their longer side is at least this many pixels
CURVE_FILE = "eval_curve.csv"
PER_EPISODE = "_per_episode"  # the suffix of every summarised number (see the module docstring for why)


def per_episode(key: str) -> str:
    """``cells`` -> ``cells_per_episode``: the name of an episode's number in the summary, the curve and W&B."""
    return key + PER_EPISODE


def label(name: str) -> str:
    """``cells_per_episode`` -> ``cells per episode``: the name as the console and the plot print it."""
    return name.replace("_", " ")


class BadInput(Exception):
    """A value on the command line that names nothing usable; the message is one line for the user."""


# ---- what an evaluation produces ----------------------------------------------------------------------------
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


# ---- the run and its checkpoints ------------------------------------------------------------------------------
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
            f"it is a sweep directory; its runs: {_few(runs)}"
            if runs
            else "a run directory holds config.yaml, run.json and checkpoint.pt"
        )
        raise BadInput(f"{run_dir} is not a run directory: no {CONFIG_FILE} ({what})")
    try:
        cfg = load_config(run_dir)
    except Exception as e:  # a damaged or foreign config.yaml: say which and why, in one line
        raise BadInput(f"{run_dir / CONFIG_FILE} cannot be loaded ({_first_line(e)})") from None
    record = RunRecord.read_or_none(run_dir)
    return RunInfo(run_dir, record.run_id if record else run_dir.name, cfg, record)


def _few(items: Sequence[Any], n: int = 8) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _load(path: Path) -> dict[str, Any]:
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
        f"snapshots at steps {_few(list(snapshots))}"
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
        latest_step = int(_load(latest)["global_step"]) if latest.is_file() else None
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


# ---- playing --------------------------------------------------------------------------------------------------
def evaluate(run: RunInfo, path: Path, state: dict[str, Any], args: argparse.Namespace, out_dir: Path) -> Evaluation:
    """Play ``args.episodes`` episodes of the checkpoint ``state`` (read from ``path``); write eval.json and the
    videos into ``out_dir``."""
    from rlsweep.envs import make_env
    from rlsweep.models import build_policy
    from rlsweep.training.seeding import select_device

    t0 = time.perf_counter()
    cfg = run.cfg
    device = select_device(args.device)
    slots = max(1, min(args.envs, args.episodes))
    envs: list[Any] = []
    try:
        envs.extend(make_env(cfg.env, 1, args.seed + slot) for slot in range(slots))
        policy = build_policy(cfg.model.name, envs[0].obs_shape, envs[0].num_actions, cfg.model.critic_init_gain)
        try:
            policy.load_state_dict(state["policy"])
        except RuntimeError as e:
            raise BadInput(f"checkpoint {path} does not fit the model of {run.run_dir} ({_first_line(e)})") from None
        policy.to(device).eval()
        episodes, frames = play(
            policy,
            envs,
            args.episodes,
            args.policy,
            args.seed,
            device,
            args.video_episodes,
            int(cfg.env.max_episode_steps),
        )
        frame_channels = envs[0].frame_channels
    finally:
        for env in envs:
            env.close()

    out_dir.mkdir(parents=True, exist_ok=True)
    result = Evaluation(
        run_dir=str(run.run_dir),
        run_id=run.run_id,
        env=str(cfg.env.id),
        checkpoint=str(path),
        global_step=int(state["global_step"]),
        iteration=int(state.get("iteration", 0)),
        policy=args.policy,
        seed=args.seed,
        device=str(device),
        envs=slots,
        time_limit_steps=int(cfg.env.max_episode_steps),
        episodes=episodes,
    )
    result.summary = summarise(episodes)
    result.note = per_episode_note(result.policy, result.summary, len(episodes))
    if args.video:
        for k, episode_frames in sorted(frames.items()):
            video = out_dir / f"episode-{k}.mp4"
            scale = write_video(video, episode_frames, frame_channels, args.fps)
            result.videos.append(
                {
                    "episode": k,
                    "path": str(video),
                    "frames": len(episode_frames),
                    "fps": args.fps,
                    "scale": scale,
                    "codec": "h264",
                }
            )
        result.frames = (
            "the observation's newest frame (what the agent sees: the env's resized frame, grey where the env "
            "is grey), scaled up by whole pixels; one frame per agent step"
        )
    result.seconds = round(time.perf_counter() - t0, 3)
    tmp = out_dir / ".eval.json.tmp"
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    tmp.replace(out_dir / "eval.json")
    return result


def play(
    policy: Any,
    envs: Sequence[Any],
    episodes: int,
    mode: str,
    seed: int,
    device: Any,
    video_episodes: int,
    time_limit: int,
) -> tuple[list[Episode], dict[int, list[np.ndarray]]]:
    """Play ``episodes`` complete episodes on the single-env ``envs`` (slot i plays episodes i, i + n, ...).

    Returns the episodes in evaluation order, and the frames (newest frame of each observation the agent acted
    on, (H, W, channels) uint8) of the episodes numbered below ``video_episodes``.
    """
    import torch

    from rlsweep.perf import unit_frames

    n = len(envs)
    quota = [len(range(slot, episodes, n)) for slot in range(n)]
    played = [0] * n
    current = list(range(n))  # each slot's episode number
    generator = torch.Generator().manual_seed(seed)
    frame_channels = int(envs[0].frame_channels)
    frames: dict[int, list[np.ndarray]] = {k: [] for k in range(min(video_episodes, episodes))}
    results: list[Episode] = []
    obs = [_start_episode(env) for env in envs]
    active = [slot for slot in range(n) if quota[slot] > 0]
    while active:
        batch = torch.from_numpy(np.concatenate([obs[slot] for slot in active])).to(device)
        with torch.no_grad():
            # The policy sees what training fed it: uint8 frames scaled to [0, 1] (PPOUpdater.forward), in float32.
            logits = policy(unit_frames(batch)).logits.float().cpu()
        if mode == "greedy":
            actions = logits.argmax(dim=-1)
        else:  # the training policy: a draw from the softmax, from the evaluation's own seeded generator
            actions = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
        actions_np = actions.numpy()
        for k, slot in enumerate(active):  # envpool's emulators all run at once; the others step in step_wait
            envs[slot].step_async(actions_np[k : k + 1])
        for slot in active:
            if current[slot] in frames:
                frames[current[slot]].append(np.moveaxis(obs[slot][0, -frame_channels:], 0, -1).copy())
            result = envs[slot].step_wait()
            obs[slot] = result.obs
            if not result.episodes:
                continue
            info = result.episodes[0]
            counters = envs[slot].exploration()
            results.append(
                Episode(
                    episode=current[slot],
                    slot=slot,
                    score=float(info.score),
                    episode_return=float(info.episode_return),
                    length=int(info.length),
                    rooms=int(info.rooms) if "rooms" in counters else None,
                    cells=int(counters["cells"]) if "cells" in counters else None,
                    time_limit=int(info.length) >= time_limit,
                )
            )
            played[slot] += 1
            current[slot] += n
            if played[slot] < quota[slot]:
                obs[slot] = _start_episode(envs[slot])
        active = [slot for slot in active if played[slot] < quota[slot]]
    results.sort(key=lambda e: e.episode)
    return results, frames


def _start_episode(env: Any) -> np.ndarray:
    """Clear the env's exploration counters, then reset it: the counters then hold this episode's alone (the reset
    counts the start room / cell). The env's own autoreset observation is replaced by this reset's."""
    env.load_exploration_state({})
    obs: np.ndarray = env.reset()
    return obs


# ---- video ------------------------------------------------------------------------------------------------------
def write_video(path: Path, frames: Sequence[np.ndarray], channels: int, fps: int) -> int:
    """Write ``frames`` ((H, W, 1) grey or (H, W, 3) RGB uint8) as a browser-playable H.264 MP4 (yuv420p,
    moov atom first); returns the whole-pixel scale factor used."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    scale = max(1, math.ceil(VIDEO_SIDE / max(h, w)))
    # yuv420p needs even sides: one more pixel of scale where a side would be odd.
    if (h * scale) % 2 or (w * scale) % 2:
        scale += 1
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (w * scale, h * scale),
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        fps=fps,
        codec="libx264",
        quality=8,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)  # start the generator (imageio-ffmpeg's protocol)
    try:
        for frame in frames:
            big = frame.repeat(scale, axis=0).repeat(scale, axis=1)
            rgb = np.repeat(big, 3, axis=-1) if channels == 1 else big
            writer.send(np.ascontiguousarray(rgb, dtype=np.uint8))
    finally:
        writer.close()
    tmp.replace(path)
    return scale


# ---- the learning curve of --all-steps --------------------------------------------------------------------------
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


# ---- W&B --------------------------------------------------------------------------------------------------------
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


# ---- the command ------------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # One line, like every other bad input of rlsweep (argparse would print the usage first).
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlsweep eval", description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
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
            state = _load(path)
            result = evaluate(run, path, state, args, base / str(int(state["global_step"])))
            print(result.line(), flush=True)
            results.append(result)
        print(results[0].note, flush=True)
        csv_path, png_path = write_curve(results, base)
        print(f"eval curve of {len(results)} snapshots: {csv_path}, {png_path}", flush=True)
    else:
        (path,) = paths
        state = _load(path)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
