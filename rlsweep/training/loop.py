"""The one training loop: PPO with two critic heads plus whatever motivation the config chose.

It reads like the method (method.md §5.1): warm up the observation statistics with random steps, then per
iteration collect T steps from N envs, compute GAE per stream, run the PPO epochs with the motivation's own
update in lock-step, log, checkpoint. RND, SND and plain PPO differ only by the motivation object.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from rlsweep.agent import PPOUpdater, explained_variance, rollout_batch
from rlsweep.agent.ppo import Batch
from rlsweep.config.schema import Config
from rlsweep.envs import EpisodeInfo, VecEnv, make_env
from rlsweep.models import build_policy
from rlsweep.motivation import Motivation, MotivationBatch, build_motivation
from rlsweep.perf import Stats, Uploader, mean_stats, to_floats
from rlsweep.storage import RolloutStorage
from rlsweep.tracking import Tracker
from rlsweep.training.checkpoint import load_checkpoint, save_checkpoint
from rlsweep.training.seeding import rng_state, seed_everything, select_device, set_rng_state


def warm_up(envs: VecEnv, motivation: Motivation, steps: int, upload: Uploader) -> None:
    """Fill the motivation's observation statistics with random-action steps (seed: 256 per env)."""
    rng = np.random.default_rng(0)
    for _ in range(steps):
        actions = rng.integers(0, envs.num_actions, size=envs.num_envs)
        result = envs.step(actions)
        motivation.update_stats(upload(result.obs))


class EpisodeStats:
    """Finished episodes since the last log line."""

    def __init__(self) -> None:
        self.episodes: list[EpisodeInfo] = []

    def add(self, episodes: list[EpisodeInfo]) -> None:
        self.episodes.extend(episodes)

    def flush(self) -> dict[str, float]:
        if not self.episodes:
            return {}
        out = {
            "episode/return": float(np.mean([e.episode_return for e in self.episodes])),
            "episode/score": float(np.mean([e.score for e in self.episodes])),
            "episode/score_max": float(np.max([e.score for e in self.episodes])),
            "episode/length": float(np.mean([e.length for e in self.episodes])),
            "episode/rooms": float(np.mean([e.rooms for e in self.episodes])),
            "episode/count": float(len(self.episodes)),
        }
        self.episodes = []
        return out


def train(cfg: Config, run_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Train one run to its budget, resuming from ``run_dir``'s checkpoint if there is one."""
    ppo = cfg.ppo
    device = select_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.autograd.set_detect_anomaly(cfg.debug.detect_anomaly)
    seed_everything(cfg.seed, cfg.debug.deterministic, device)
    checkpoint = load_checkpoint(run_dir, device)
    iteration = 0 if checkpoint is None else int(checkpoint["iteration"])
    global_step = 0 if checkpoint is None else int(checkpoint["global_step"])
    batch_size = ppo.num_envs * ppo.num_steps
    iterations = -(-cfg.budget.total_steps // batch_size)  # ceil: a budget is at least reached

    # A resumed run re-seeds its envs differently, so it does not replay the episodes of the first attempt.
    env_seed = cfg.seed if checkpoint is None else cfg.seed + 1_000_003 * iteration
    envs = make_env(cfg.env, ppo.num_envs, env_seed)
    policy = build_policy(cfg.model.name, envs.obs_shape, envs.num_actions, cfg.model.critic_init_gain).to(device)
    updater = PPOUpdater(policy, ppo, cfg.perf)
    motivation = build_motivation(cfg.motivation, envs.obs_shape, device, envs.frame_channels, cfg.perf)
    upload = Uploader(device, cfg.perf.pin_memory)
    storage = RolloutStorage(ppo.num_steps, ppo.num_envs, envs.obs_shape, device)
    tracker = Tracker(cfg, run_dir, info, resume_step=global_step if checkpoint else None)
    status = "failed"
    summary: dict[str, Any] = {}
    try:
        obs_np = envs.reset()
        if checkpoint is not None:
            policy.load_state_dict(checkpoint["policy"])
            updater.optimizer.load_state_dict(checkpoint["optimizer"])
            motivation.load_state_dict(checkpoint["motivation"])
            envs.load_exploration_state(checkpoint["exploration"])
            set_rng_state(checkpoint["rng"])
            print(f"[{info['run_id']}] resumed at iteration {iteration}, step {global_step}", flush=True)
        elif motivation.needs_warmup and cfg.motivation.warmup_steps > 0:
            # Random steps must not count as exploration by the agent: restore the counters afterwards.
            exploration_before = envs.exploration_state()
            warm_up(envs, motivation, cfg.motivation.warmup_steps, upload)
            envs.load_exploration_state(exploration_before)
            obs_np = envs.reset()
        obs = upload(obs_np)
        episodes = EpisodeStats()
        window_start, window_step = time.perf_counter(), global_step
        phase: dict[str, float] = defaultdict(float)
        last_log: dict[str, Any] = {}

        while iteration < iterations:
            if cfg.debug.crash_at_iteration and iteration + 1 == cfg.debug.crash_at_iteration:
                raise RuntimeError(f"debug.crash_at_iteration={cfg.debug.crash_at_iteration}: crashing on purpose")
            # 1. Collect T steps from N envs; the intrinsic reward is computed on s_t (method.md §4.3).
            t0 = time.perf_counter()
            int_rewards = []
            for step in range(ppo.num_steps):
                with torch.no_grad():
                    out = updater.forward(obs)
                    dist = Categorical(logits=out.logits)
                    action = dist.sample()
                actions_np = action.cpu().numpy()
                if cfg.perf.overlap_env:
                    envs.step_async(actions_np)  # the emulators run while the networks compute r_int(s_t)
                with torch.no_grad():
                    motivation.update_stats(obs)
                    r_int = motivation.reward(obs)
                t_env = time.perf_counter()
                if not cfg.perf.overlap_env:
                    envs.step_async(actions_np)
                result = envs.step_wait()
                phase["env"] += time.perf_counter() - t_env  # time the loop waits for the emulators
                storage.insert(step, obs, action, dist.log_prob(action), out.value_ext, out.value_int, r_int)
                storage.insert_env(step, result.reward, result.done)
                int_rewards.append(r_int)
                episodes.add(result.episodes)
                obs = upload(result.obs)
            storage.finish(obs)  # s_T (the last states' successors, for SND-VIC / SND-STD), rewards and dones
            global_step += batch_size
            phase["collect"] += time.perf_counter() - t0

            # 2. GAE per stream, then the 2:1 combination (unnormalised in the seed).
            t0 = time.perf_counter()
            with torch.no_grad():
                last = updater.forward(obs)
            batch = rollout_batch(storage, last.value_ext, last.value_int, ppo)

            # 3. PPO epochs; the motivation (predictor, and SND's target) trains per minibatch (seed) or in one
            #    pass afterwards (paper).
            stats = update(updater, motivation, storage, batch, cfg.motivation.predictor_updates)
            phase["update"] += time.perf_counter() - t0
            iteration += 1

            # 4. Log under fixed names on the global-step axis.
            if iteration % cfg.budget.log_every == 0 or iteration == iterations:
                r_int_all = torch.stack(int_rewards)
                now = time.perf_counter()
                metrics: dict[str, Any] = {"global_step": global_step, "iteration": iteration}
                metrics.update(episodes.flush())
                metrics.update({f"explore/{k}": float(v) for k, v in envs.exploration().items()})
                metrics.update(to_floats(stats))
                metrics["ppo/explained_var_ext"] = explained_variance(storage.values_ext.reshape(-1), batch.returns_ext)
                metrics["ppo/explained_var_int"] = explained_variance(storage.values_int.reshape(-1), batch.returns_int)
                metrics["motivation/int_reward_mean"] = float(r_int_all.mean())
                metrics["motivation/int_reward_std"] = float(r_int_all.std())
                metrics["motivation/int_reward_max"] = float(r_int_all.max())
                metrics["perf/sps"] = (global_step - window_step) / max(now - window_start, 1e-9)
                if cfg.debug.profile:
                    metrics.update({f"perf/time_{k}": v for k, v in phase.items()})
                phase.clear()
                window_start, window_step = now, global_step
                tracker.log(metrics)
                last_log = {**last_log, **metrics}
                if iteration % cfg.logger.console_every == 0 or iteration == iterations:
                    tracker.console(iteration, iterations, last_log)

            # 5. Checkpoint atomically; only then may W&B see the lines it covers.
            if iteration % cfg.budget.checkpoint_every == 0 or iteration == iterations:
                save_checkpoint(
                    {
                        "iteration": iteration,
                        "global_step": global_step,
                        "policy": policy.state_dict(),
                        "optimizer": updater.optimizer.state_dict(),
                        "motivation": motivation.state_dict(),
                        "exploration": envs.exploration_state(),
                        "rng": rng_state(),
                        "wandb_id": tracker.info.get("wandb_id"),
                    },
                    run_dir,
                )
                tracker.commit()
        status = "completed"
        summary = {k: v for k, v in last_log.items() if not k.startswith("perf/time")}
        return summary
    finally:
        try:
            tracker.finish(status, summary)
        except Exception as e:
            if status == "completed":
                raise
            # Already failing (or preempted: SLURM may have killed W&B's service first): keep the first error.
            print(f"[{info['run_id']}] could not close the tracker cleanly: {e!r}", file=sys.stderr, flush=True)
        envs.close()


def update(updater: PPOUpdater, motivation: Motivation, storage: RolloutStorage, batch: Batch, schedule: str) -> Stats:
    """PPO epochs, with the motivation trained per minibatch (seed) or in one pass afterwards (SND paper)."""
    if schedule == "per_minibatch":
        return updater.update(batch, after_minibatch=partial(_update_on, motivation, storage))
    stats = updater.update(batch)
    stats.update(_one_pass(motivation, storage, updater.cfg.minibatch_size))
    return stats


def _motivation_batch(storage: RolloutStorage, idx: torch.Tensor) -> MotivationBatch:
    flat = storage.flat_obs()
    return MotivationBatch(obs=flat[idx], indices=idx, rollout_obs=flat, successors=storage.next_obs)


def _update_on(motivation: Motivation, storage: RolloutStorage, idx: torch.Tensor) -> Stats:
    return motivation.update(_motivation_batch(storage, idx))


def _one_pass(motivation: Motivation, storage: RolloutStorage, minibatch: int) -> Stats:
    """The SND paper's schedule: one pass over the rollout in consecutive minibatches."""
    size = storage.num_steps * storage.num_envs
    history = []
    for start in range(0, size, minibatch):
        idx = torch.arange(start, min(start + minibatch, size), device=storage.obs.device)
        history.append(motivation.update(_motivation_batch(storage, idx)))
    return mean_stats(history)
