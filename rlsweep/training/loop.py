"""The one training loop: PPO with two critic heads plus whatever motivation the config chose.

``train`` reads like the method (method.md §5.1): set up (envs, policy, updater, motivation, storage, tracker;
resume from the checkpoint or warm up the observation statistics with random steps), then per iteration
``collect`` T steps from N envs, compute the ``advantages`` (GAE per stream), ``update`` (the PPO epochs with
the motivation's own update in lock-step), ``log``, ``checkpoint``. RND, SND and plain PPO differ only by the
motivation object. The plumbing (phase timers, metric assembly, checkpoint state, resume) sits below the steps.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from rlsweep.agent import PPOUpdater, explained_variance, rollout_batch
from rlsweep.agent.ppo import Batch
from rlsweep.config.fingerprint import differences, fingerprint, training_config
from rlsweep.config.schema import Config
from rlsweep.envs import EpisodeInfo, VecEnv, make_env
from rlsweep.lock import LockLost
from rlsweep.models import PolicyNet, build_policy
from rlsweep.motivation import Motivation, MotivationBatch, build_motivation
from rlsweep.perf import Stats, Uploader, mean_stats, to_floats
from rlsweep.storage import RolloutStorage
from rlsweep.tracking import Tracker
from rlsweep.training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    snapshot_due,
)
from rlsweep.training.seeding import rng_state, seed_everything, select_device, set_rng_state


def train(cfg: Config, run_dir: Path, info: dict[str, Any], guard: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Train one run to its budget, resuming from ``run_dir``'s checkpoint if there is one.

    ``guard`` is called before anything of an iteration is written; it raises to stop a run that must not write
    any more (the job's :meth:`PointLock.check <rlsweep.lock.PointLock.check>`: the point was taken over).
    """
    run, resume_from = set_up(cfg, run_dir, info)
    status = "failed"
    try:
        obs = resume_or_warm_up(run, resume_from)
        episodes = EpisodeStats()
        timer = PhaseTimer(run.global_step)
        last_log: dict[str, Any] = {}

        while run.iteration < run.iterations:
            if cfg.debug.crash_at_iteration and run.iteration + 1 == cfg.debug.crash_at_iteration:
                raise RuntimeError(f"debug.crash_at_iteration={cfg.debug.crash_at_iteration}: crashing on purpose")
            # 1. Collect T steps from N envs; the intrinsic reward is computed on s_t (method.md §4.3).
            with timer.phase("collect"):
                obs, int_rewards = collect(run, obs, episodes, timer)
            with timer.phase("update"):
                # 2. GAE per stream, then the 2:1 combination (unnormalised in the seed).
                batch = advantages(run, obs)
                # 3. PPO epochs; the motivation (predictor, and SND's target) trains per minibatch (seed) or in one
                #    pass afterwards (paper).
                stats = update(run.updater, run.motivation, run.storage, batch, cfg.motivation.predictor_updates)
            run.iteration += 1
            # A diverged update stops here, before anything of it is checkpointed: the last good checkpoint stays.
            check_finite(run, stats, batch)
            guard()

            # 4. Log under fixed names on the global-step axis.
            if run.due(cfg.budget.log_every):
                last_log = log(run, iteration_metrics(run, stats, batch, int_rewards, episodes, timer), last_log)

            # 5. Checkpoint atomically; only then may W&B see the lines it covers.
            if run.due(cfg.budget.checkpoint_every) or run.iteration == cfg.debug.pause_at_iteration:
                checkpoint(run)
            if run.iteration == cfg.debug.pause_at_iteration:
                wait_to_be_stopped(run)
        status = "completed"
        return {k: v for k, v in last_log.items() if not k.startswith("perf/time")}
    except LockLost:
        status = "superseded"
        raise
    finally:
        close(run, status)


# ---- the run's parts ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One run's parts, built by ``set_up``; ``iteration`` and ``global_step`` advance as it trains."""

    cfg: Config
    run_dir: Path
    info: dict[str, Any]
    envs: VecEnv
    policy: PolicyNet
    updater: PPOUpdater
    motivation: Motivation
    upload: Uploader
    storage: RolloutStorage
    tracker: Tracker
    iteration: int  # iterations done (of this and earlier attempts)
    global_step: int  # agent steps done, summed over envs: the x axis of every metric
    iterations: int  # iterations in the budget

    @property
    def batch_size(self) -> int:
        return self.cfg.ppo.num_envs * self.cfg.ppo.num_steps

    def due(self, every: int) -> bool:
        """Whether the iteration just done is a multiple of ``every`` or the last one."""
        return self.iteration % every == 0 or self.iteration == self.iterations


# ---- set up ------------------------------------------------------------------------------------------------------
def set_up(cfg: Config, run_dir: Path, info: dict[str, Any]) -> tuple[Run, dict[str, Any] | None]:
    """Seed, then build envs, policy, updater, motivation, storage and tracker; also return the checkpoint, if any.

    The order is the order of the seeded RNG draws (network inits), so it fixes a seed's numbers. Nothing here
    needs closing on failure: the tracker is built last, and ``train`` closes the run from then on.
    """
    ppo = cfg.ppo
    device = select_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.autograd.set_detect_anomaly(cfg.debug.detect_anomaly)
    seed_everything(cfg.seed, cfg.debug.deterministic, device)
    saved = load_checkpoint(run_dir, device)
    # What this run trains (the job passes it from config.yaml; a bare train() call derives it from cfg).
    if "fingerprint" not in info:
        resolved = dataclasses.asdict(cfg)
        info["training"], info["fingerprint"] = training_config(resolved), fingerprint(resolved)
    if saved is not None:
        check_same_training(saved, info, cfg.resume, run_dir)
    iteration = 0 if saved is None else int(saved["iteration"])
    global_step = 0 if saved is None else int(saved["global_step"])
    batch_size = ppo.num_envs * ppo.num_steps
    iterations = -(-cfg.budget.total_steps // batch_size)  # ceil: a budget is at least reached

    # A resumed run re-seeds its envs differently, so it does not replay the episodes of the first attempt.
    env_seed = cfg.seed if saved is None else cfg.seed + 1_000_003 * iteration
    envs = make_env(cfg.env, ppo.num_envs, env_seed)
    policy = build_policy(cfg.model.name, envs.obs_shape, envs.num_actions, cfg.model.critic_init_gain).to(device)
    updater = PPOUpdater(policy, ppo, cfg.perf)
    motivation = build_motivation(cfg.motivation, envs.obs_shape, device, envs.frame_channels, cfg.perf, ppo.num_envs)
    upload = Uploader(device, cfg.perf.pin_memory)
    storage = RolloutStorage(ppo.num_steps, ppo.num_envs, envs.obs_shape, device)
    tracker = Tracker(cfg, run_dir, info, resume_step=global_step if saved else None)
    run = Run(cfg, run_dir, info, envs, policy, updater, motivation, upload, storage, tracker,
              iteration, global_step, iterations)  # fmt: skip
    return run, saved


def check_same_training(saved: dict[str, Any], info: dict[str, Any], resume: str, run_dir: Path) -> None:
    """A checkpoint continues only under the config it was made with, unless ``resume=continue`` says so."""
    made_under = saved.get("fingerprint")
    if made_under is None or made_under == info["fingerprint"] or resume == "continue":
        return
    raise CheckpointError(
        f"checkpoint {run_dir / CHECKPOINT_NAME} was made under another config "
        f"({differences(saved.get('training') or {}, info['training'])}); rerun under a new name, or with "
        "resume=continue to go on under this config, or resume=restart to start over"
    )


def resume_or_warm_up(run: Run, saved: dict[str, Any] | None) -> torch.Tensor:
    """Reset the envs, then resume from ``saved`` or warm up the motivation; return s_0 on the device."""
    envs = run.envs
    obs_np = envs.reset()
    if saved is not None:
        resume(run, saved)
    elif run.motivation.needs_warmup and run.cfg.motivation.warmup_steps > 0:
        # Random steps must not count as exploration by the agent: restore the counters afterwards.
        exploration_before = envs.exploration_state()
        warm_up(envs, run.motivation, run.cfg.motivation.warmup_steps, run.upload)
        envs.load_exploration_state(exploration_before)
        obs_np = envs.reset()
    return run.upload(obs_np)


def warm_up(envs: VecEnv, motivation: Motivation, steps: int, upload: Uploader) -> None:
    """Fill the motivation's observation statistics with random-action steps (seed: 256 per env)."""
    rng = np.random.default_rng(0)
    for _ in range(steps):
        actions = rng.integers(0, envs.num_actions, size=envs.num_envs)
        result = envs.step(actions)
        motivation.update_stats(upload(result.obs))


# ---- the steps of an iteration ---------------------------------------------------------------------------------
def collect(
    run: Run, obs: torch.Tensor, episodes: EpisodeStats, timer: PhaseTimer
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Step the N envs T times from s_0 = ``obs`` into the storage; return s_T and each step's intrinsic reward.

    Owns the acting: sampling actions, stepping the envs, r_int(s_t) and the motivation's observation
    statistics, the finished episodes, and ``global_step``.
    """
    cfg, envs, updater, motivation, storage = run.cfg, run.envs, run.updater, run.motivation, run.storage
    int_rewards = []
    for step in range(cfg.ppo.num_steps):
        with torch.no_grad():
            out = updater.forward(obs)
            dist = Categorical(logits=out.logits)
            action = dist.sample()
        actions_np = action.cpu().numpy()
        if cfg.perf.overlap_env:
            envs.step_async(actions_np)  # the emulators run while the networks compute r_int(s_t)
        with torch.no_grad():
            if not motivation.stats_from_next:
                motivation.update_stats(obs)
            r_int = motivation.reward(obs, step)
        with timer.phase("env"):  # time the loop waits for the emulators
            if not cfg.perf.overlap_env:
                envs.step_async(actions_np)
            result = envs.step_wait()
        storage.insert(step, obs, action, dist.log_prob(action), out.value_ext, out.value_int, r_int)
        storage.insert_env(step, result.reward, result.done)
        int_rewards.append(r_int)
        episodes.add(result.episodes)
        obs = run.upload(result.obs)
        if motivation.stats_from_next:
            with torch.no_grad():
                motivation.update_stats(obs)  # the author's RND: s_{t+1}, after r_int(s_t)
    storage.finish(obs)  # s_T (the last states' successors, for SND-VIC / SND-STD), rewards and dones
    run.global_step += run.batch_size
    return obs, int_rewards


def advantages(run: Run, last_obs: torch.Tensor) -> Batch:
    """GAE per stream (bootstrapped from V(s_T)), then the 2:1 combination (unnormalised in the seed)."""
    with torch.no_grad():
        last = run.updater.forward(last_obs)
    return rollout_batch(run.storage, last.value_ext, last.value_int, run.cfg.ppo)


def update(updater: PPOUpdater, motivation: Motivation, storage: RolloutStorage, batch: Batch, schedule: str) -> Stats:
    """PPO epochs, with the motivation trained per minibatch (seed) or in one pass afterwards (SND paper)."""
    if schedule == "per_minibatch":
        return updater.update(batch, after_minibatch=partial(_update_on, motivation, storage))
    stats = updater.update(batch)
    stats.update(_one_pass(motivation, storage, updater.cfg.minibatch_size))
    return stats


def log(run: Run, metrics: dict[str, Any], last_log: dict[str, Any]) -> dict[str, Any]:
    """Write one metric line, and the console line every ``logger.console_every`` iterations (and at the end).

    Returns ``last_log`` updated with ``metrics``: the latest value of every metric, which the console line
    and the run's summary show (a key missing from this line, such as ``episode/*``, keeps its last value).
    """
    run.tracker.log(metrics)
    last_log = {**last_log, **metrics}
    if run.due(run.cfg.logger.console_every):
        run.tracker.console(run.iteration, run.iterations, last_log)
    return last_log


def checkpoint(run: Run) -> None:
    """Save the run's state atomically, then commit the tracker: W&B only gets lines a checkpoint covers.

    With ``budget.keep_checkpoints`` the checkpoints of some iterations are also kept as snapshots
    (``checkpoints/step-<global_step>.pt``; which ones: :func:`~rlsweep.training.checkpoint.snapshot_due`).
    """
    budget = run.cfg.budget
    snapshot = snapshot_due(run.iteration, run.iterations, budget.checkpoint_every, budget.keep_checkpoints)
    save_checkpoint(checkpoint_state(run), run.run_dir, snapshot=snapshot)
    run.tracker.commit()


PAUSE_LIMIT_S = 600.0  # a paused run nobody stops (a test that failed first) must not hold its slot for ever


class DivergenceError(RuntimeError):
    """The update produced a non-finite loss, gradient norm or value; the message says where and what."""


def check_finite(run: Run, stats: Stats, batch: Batch) -> None:
    """Raise :class:`DivergenceError` naming the iteration and every non-finite quantity (one device read)."""
    checked = {k: v.detach().reshape(()) for k, v in stats.items() if k.startswith(("loss/", "ppo/grad"))}
    checked.update(
        {"value/ext": run.storage.values_ext, "value/int": run.storage.values_int, "advantages": batch.advantages}
    )
    finite = torch.stack([torch.isfinite(v).all() for v in checked.values()]).tolist()
    if all(finite):
        return
    bad = ", ".join(k for k, ok in zip(checked, finite, strict=True) if not ok)
    raise DivergenceError(
        f"non-finite {bad} at iteration {run.iteration}; the run stopped there and its last checkpoint is kept"
    )


def wait_to_be_stopped(run: Run) -> None:
    """``debug.pause_at_iteration``: hold the run at a known checkpoint until a signal stops it (tests only)."""
    print(f"[{run.info['run_id']}] paused at iteration {run.iteration} (debug.pause_at_iteration): waiting to be "
          "stopped", flush=True)  # fmt: skip
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(1.0)  # signal handlers (SIGTERM, SLURM's USR2) run between sleeps
    raise RuntimeError(f"debug.pause_at_iteration={run.iteration}: nothing stopped the run in {PAUSE_LIMIT_S:.0f} s")


def close(run: Run, status: str) -> None:
    """Close the tracker with the run's status, then the envs. A superseded run leaves the record alone."""
    try:
        run.tracker.finish(status, save=status != "superseded")
    except Exception as e:
        if status == "completed":
            raise
        # Already failing (or preempted: SLURM may have killed W&B's service first): keep the first error.
        print(f"[{run.info['run_id']}] could not close the tracker cleanly: {e!r}", file=sys.stderr, flush=True)
    run.envs.close()


# ---- plumbing ----------------------------------------------------------------------------------------------------
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


class PhaseTimer:
    """Wall-clock seconds per phase (``perf/time_*``) and agent steps per second, since the last log line."""

    def __init__(self, global_step: int) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.window_start, self.window_step = time.perf_counter(), global_step

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.seconds[name] += time.perf_counter() - t0

    def window(self, global_step: int, profile: bool) -> dict[str, float]:
        """``perf/sps`` (and with ``profile`` the phase times) of the window that ends now; the next one starts."""
        now = time.perf_counter()
        perf = {"perf/sps": (global_step - self.window_step) / max(now - self.window_start, 1e-9)}
        if profile:
            perf.update({f"perf/time_{k}": v for k, v in self.seconds.items()})
        self.seconds.clear()
        self.window_start, self.window_step = now, global_step
        return perf


def iteration_metrics(
    run: Run,
    stats: Stats,
    batch: Batch,
    int_rewards: list[torch.Tensor],
    episodes: EpisodeStats,
    timer: PhaseTimer,
) -> dict[str, Any]:
    """One metric line, its keys in a fixed order; empties the episode statistics and starts a new timing window."""
    r_int_all = torch.stack(int_rewards)
    perf = timer.window(run.global_step, run.cfg.debug.profile)
    storage = run.storage
    metrics: dict[str, Any] = {"global_step": run.global_step, "iteration": run.iteration}
    metrics.update(episodes.flush())
    metrics.update({f"explore/{k}": float(v) for k, v in run.envs.exploration().items()})
    metrics.update(to_floats(stats))
    metrics["ppo/explained_var_ext"] = explained_variance(storage.values_ext.reshape(-1), batch.returns_ext)
    metrics["ppo/explained_var_int"] = explained_variance(storage.values_int.reshape(-1), batch.returns_int)
    metrics["motivation/int_reward_mean"] = float(r_int_all.mean())
    metrics["motivation/int_reward_std"] = float(r_int_all.std())
    metrics["motivation/int_reward_max"] = float(r_int_all.max())
    metrics.update(perf)
    return metrics


def checkpoint_state(run: Run) -> dict[str, Any]:
    """Everything a resumed attempt needs to continue where this one is; ``resume`` reads it back."""
    return {
        "iteration": run.iteration,
        "global_step": run.global_step,
        "policy": run.policy.state_dict(),
        "optimizer": run.updater.optimizer.state_dict(),
        "motivation": run.motivation.state_dict(),
        "exploration": run.envs.exploration_state(),
        "rng": rng_state(),
        "wandb_id": run.tracker.info.get("wandb_id"),
        # what the checkpoint was trained under: a resume under another config is refused (check_same_training)
        "fingerprint": run.info["fingerprint"],
        "training": run.info["training"],
    }


def resume(run: Run, saved: dict[str, Any]) -> None:
    """Restore the state ``checkpoint_state`` saved (``set_up`` already took its iteration and global step)."""
    run.policy.load_state_dict(saved["policy"])
    run.updater.optimizer.load_state_dict(saved["optimizer"])
    run.motivation.load_state_dict(saved["motivation"])
    run.envs.load_exploration_state(saved["exploration"])
    set_rng_state(saved["rng"])
    print(f"[{run.info['run_id']}] resumed at iteration {run.iteration}, step {run.global_step}", flush=True)


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
