"""Playing a checkpoint: :func:`evaluate` rebuilds the env and the policy of one checkpoint, has :func:`play` play
its episodes, and writes ``eval.json`` and the videos.

The env and the policy come from the run's own ``config.yaml`` with the builders training uses
(:func:`rlsweep.envs.make_env`, :func:`rlsweep.models.build_policy`), so what is played is what was trained. The
policy acts greedily (the action with the largest logit) or samples, as in training (:data:`POLICIES`).

Episodes are played by ``--envs`` single-env instances side by side (one batched forward pass per step). One
instance per slot, not one vectorised env, so that each slot plays exactly its share of episodes one after the
other (no bias towards short episodes), and so that the env's own exploration counters, cleared at each
episode's start, count that one episode's rooms and cells. Env seeds are ``--seed + slot``; greedy play with one
seed repeats exactly, and so does sampling (its draws come from a generator seeded with ``--seed``). An episode
cut by the env's time limit (``env.max_episode_steps``) counts like any other (it is flagged).

Video frames are s_0 ... s_{T-1}: with same-step autoreset the frame after the last action is already the next
episode's first, so an episode of T steps has T frames.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rlsweep.evaluation.checkpoints import RunInfo
from rlsweep.evaluation.errors import BadInput, first_line
from rlsweep.evaluation.results import Episode, Evaluation, per_episode_note, summarise
from rlsweep.evaluation.video import FRAMES, write_video

POLICIES = ("greedy", "sample")


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
            raise BadInput(f"checkpoint {path} does not fit the model of {run.run_dir} ({first_line(e)})") from None
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
        result.frames = FRAMES
    result.seconds = round(time.perf_counter() - t0, 3)
    # Written whole and renamed: a reader never sees half an eval.json.
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

    from rlsweep.compute.perf import unit_frames

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
