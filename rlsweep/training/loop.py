"""The one training loop: PPO with two critic heads plus whatever motivation the config chose.

``train`` reads like the method (method.md §5.1): set up (envs, policy, updater, motivation, storage, tracker;
resume from the checkpoint or warm up the observation statistics with random steps), then per iteration
``collect`` T steps from N envs, compute the ``advantages`` (GAE per stream), ``update`` (the PPO epochs with
the motivation's own update in lock-step), ``log``, ``checkpoint``. RND, SND and plain PPO differ only by the
motivation object. The plumbing (phase timers, metric assembly, checkpoint state, resume) sits below the steps.

``train_seeds`` runs the same loop for k seeds of one configuration in one process (``seeds_per_process``): the
networks are stacked (:mod:`rlsweep.compute.stacked`), the envs are k pools side by side
(:class:`~rlsweep.envs.group.SeedEnvs`), and each seed keeps what makes it a run of its own (:class:`SeedRun`:
directory, tracker, metrics, episodes, checkpoint). A seed that diverges stops alone; the others go on.
``train`` is the loop for one run.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from rlsweep.agent import PPOUpdater, explained_variance, rollout_batch
from rlsweep.agent.ppo import Batch
from rlsweep.compute.perf import Stats, Uploader, bf16_warning, mean_stats, stacked_cpu_warning, to_floats
from rlsweep.compute.stacked import (
    by_seed,
    generator_state,
    load_generator_state,
    load_seed_states,
    sample_actions,
    seed_generator,
    seed_rows,
    seed_states,
    seed_value,
    stack,
)
from rlsweep.config.fingerprint import differences, fingerprint, training_config
from rlsweep.config.schema import Config
from rlsweep.envs import EpisodeInfo, VecEnv, make_env
from rlsweep.envs.group import SeedEnvs
from rlsweep.models import PolicyNet, build_policy
from rlsweep.motivation import Motivation, MotivationBatch, build_motivation
from rlsweep.rundir.lock import LockLost
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
    any more (the job's :meth:`PointLock.check <rlsweep.rundir.lock.PointLock.check>`: the point was taken over).
    """
    (outcome,) = train_seeds([cfg], [run_dir], [info], guard)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def train_seeds(
    cfgs: list[Config], run_dirs: list[Path], infos: list[dict[str, Any]], guard: Callable[[], None] = lambda: None
) -> list[dict[str, Any] | DivergenceError]:
    """Train seeds of one configuration together to their budget, each resuming its own checkpoint.

    Returns, per seed, its last metrics or the :class:`DivergenceError` that stopped it (the others went on).
    Anything else that goes wrong stops them all and is raised.
    """
    run, resume_from = set_up(cfgs, run_dirs, infos)
    cfg = run.cfg
    finished = False
    superseded = False
    try:
        obs = resume_or_warm_up(run, resume_from)
        timer = PhaseTimer(run.global_step, run.storage.obs.device if cfg.debug.profile else None)

        while run.iteration < run.iterations and run.alive:
            if cfg.debug.crash_at_iteration and run.iteration + 1 == cfg.debug.crash_at_iteration:
                raise RuntimeError(f"debug.crash_at_iteration={cfg.debug.crash_at_iteration}: crashing on purpose")
            # 1. Collect T steps from N envs; the intrinsic reward is computed on s_t (method.md §4.3).
            with timer.phase("collect"):
                obs = collect(run, obs, timer)
            with timer.phase("update"):
                # 2. GAE per stream, then the 2:1 combination (unnormalised in the seed).
                batch = advantages(run, obs)
                # 3. PPO epochs; the motivation (predictor, and SND's target) trains per minibatch (seed) or in one
                #    pass afterwards (paper).
                stats = update(run.updater, run.motivation, run.storage, batch, cfg.motivation.predictor_updates)
            run.iteration += 1
            # A diverged update stops its seed here, before anything of it is checkpointed: its last good
            # checkpoint stays.
            check_finite(run, stats, batch)
            guard()

            # 4. Log under fixed names on the global-step axis.
            if run.due(cfg.budget.log_every):
                perf = timer.window(run.global_step, cfg.debug.profile)
                for j, seed in run.training():
                    log(run, seed, iteration_metrics(run, j, stats, batch, perf))

            # 5. Checkpoint atomically; only then may W&B see the lines it covers.
            if run.due(cfg.budget.checkpoint_every) or run.iteration == cfg.debug.pause_at_iteration:
                checkpoint(run)
            if run.iteration == cfg.debug.pause_at_iteration:
                wait_to_be_stopped(run)
        finished = True
        return [s.error or {k: v for k, v in s.last_log.items() if not k.startswith("perf/time")} for s in run.seeds]
    except LockLost:
        superseded = True
        raise
    finally:
        close(run, finished, superseded)


# ---- the run's parts ---------------------------------------------------------------------------------------------
@dataclass
class SeedRun:
    """What is one seed's own: its run directory, identity, tracker, finished episodes and last metrics."""

    cfg: Config
    run_dir: Path
    info: dict[str, Any]
    tracker: Tracker
    episodes: EpisodeStats = field(default_factory=lambda: EpisodeStats())
    last_log: dict[str, Any] = field(default_factory=dict)  # latest value of every metric (console, summary)
    error: DivergenceError | None = None  # why this seed stopped before its budget, while others go on


@dataclass
class Run:
    """The parts of the run(s) trained in this process, built by ``set_up``; ``iteration`` and ``global_step``
    (per seed) advance as it trains. With several seeds the networks are stacked and the envs side by side."""

    cfg: Config
    seeds: list[SeedRun]
    envs: VecEnv
    seed_envs: list[VecEnv]  # each seed's own envs (its exploration counters)
    policy: PolicyNet
    updater: PPOUpdater
    motivation: Motivation
    upload: Uploader
    storage: RolloutStorage
    generators: list[torch.Generator] | None  # each seed's own random draws when several train; None: one run
    iteration: int  # iterations done (of this and earlier attempts)
    global_step: int  # agent steps done by each seed, summed over its envs: the x axis of every metric
    iterations: int  # iterations in the budget

    @property
    def batch_size(self) -> int:
        """Agent steps per iteration of one seed."""
        return self.cfg.ppo.num_envs * self.cfg.ppo.num_steps

    @property
    def alive(self) -> bool:
        return any(s.error is None for s in self.seeds)

    def training(self) -> list[tuple[int, SeedRun]]:
        """The seeds still training (not stopped by a divergence), with their position in the stack."""
        return [(j, s) for j, s in enumerate(self.seeds) if s.error is None]

    def due(self, every: int) -> bool:
        """Whether the iteration just done is a multiple of ``every`` or the last one."""
        return self.iteration % every == 0 or self.iteration == self.iterations


# ---- set up ------------------------------------------------------------------------------------------------------
def set_up(
    cfgs: list[Config], run_dirs: list[Path], infos: list[dict[str, Any]]
) -> tuple[Run, list[dict[str, Any]] | None]:
    """Seed, then build envs, policy, updater, motivation, storage and trackers; also return the checkpoints, if any.

    Each seed's envs and networks are built after seeding with its own seed, in the order of the seeded RNG draws
    (network inits) of a lone run, so one seed alone gets exactly a lone run's numbers; several are then stacked.
    Nothing here needs closing on failure until the trackers are built, last.
    """
    cfg = cfgs[0]
    ppo = cfg.ppo
    device = select_device(cfg.device)
    if device.type == "cuda":
        # cuda:N: the events that guard the pinned upload buffers are recorded on the current device's stream
        torch.cuda.set_device(device)
    for slow in (bf16_warning(device, cfg.perf.autocast), stacked_cpu_warning(device, len(cfgs))):
        if slow:
            print(f"[rlsweep] warning: {slow}", file=sys.stderr, flush=True)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.autograd.set_detect_anomaly(cfg.debug.detect_anomaly)
    saved: list[dict[str, Any] | None] = []
    envs: list[VecEnv] = []
    policies: list[PolicyNet] = []
    motivations: list[Motivation] = []
    generators: list[torch.Generator] = []
    for seed_cfg, run_dir, info in zip(cfgs, run_dirs, infos, strict=True):
        seed_everything(seed_cfg.seed, cfg.debug.deterministic, device)
        # Read to host memory: each part copies its state to the run's device as it loads it, and the RNG states
        # (numpy's key, the generators') are host data that a CUDA tensor could not become.
        checkpoint = load_checkpoint(run_dir)
        # What this run trains (the job passes it from config.yaml; a bare train() call derives it from cfg).
        if "fingerprint" not in info:
            resolved = dataclasses.asdict(seed_cfg)
            info["training"], info["fingerprint"] = training_config(resolved), fingerprint(resolved)
        if checkpoint is not None:
            check_same_training(checkpoint, info, cfg.resume, run_dir)
        iteration = 0 if checkpoint is None else int(checkpoint["iteration"])
        # A resumed run re-seeds its envs differently, so it does not replay the episodes of the first attempt.
        env_seed = seed_cfg.seed if checkpoint is None else seed_cfg.seed + 1_000_003 * iteration
        seed_envs = make_env(cfg.env, ppo.num_envs, env_seed)
        envs.append(seed_envs)
        policies.append(build_policy(cfg.model.name, seed_envs.obs_shape, seed_envs.num_actions,
                                     cfg.model.critic_init_gain).to(device))  # fmt: skip
        motivations.append(build_motivation(cfg.motivation, seed_envs.obs_shape, device, seed_envs.frame_channels,
                                            cfg.perf, ppo.num_envs))  # fmt: skip
        # Where a lone run of this seed would draw next (several seeds: each draws from its own from here on).
        generators.append(seed_generator(device, seed_cfg.seed))
        saved.append(checkpoint)
    check_one_start(saved, run_dirs)
    first = saved[0]
    iteration = 0 if first is None else int(first["iteration"])
    global_step = 0 if first is None else int(first["global_step"])
    # The budget is in agent steps: the iterations it takes from where the run stands, at this config's batch (ceil:
    # a budget is at least reached, by less than one batch). A run resumed under another batch size
    # (resume=continue) trains the steps it has left at the new size; its iterations count on from the checkpoint's.
    iterations = iteration + -(-max(cfg.budget.total_steps - global_step, 0) // (ppo.num_envs * ppo.num_steps))

    k = len(cfgs)
    own_draws = generators if k > 1 else None  # one run draws from the global generators, as it always has
    vec: VecEnv = envs[0] if k == 1 else SeedEnvs(envs)
    policy: PolicyNet = stack(policies)  # type: ignore[assignment]  # a SeedStack answers as the policy does
    updater = PPOUpdater(policy, ppo, cfg.perf, seeds=k, generators=own_draws)
    motivation = motivations[0]
    if k > 1:
        motivation.stack(motivations[1:], generators)
    upload = Uploader(device, cfg.perf.pin_memory)
    storage = RolloutStorage(ppo.num_steps, ppo.num_envs * k, vec.obs_shape, device)
    seeds: list[SeedRun] = []
    try:
        for seed_cfg, run_dir, info in zip(cfgs, run_dirs, infos, strict=True):
            tracker = Tracker(seed_cfg, run_dir, info, resume_step=global_step if first else None)
            seeds.append(SeedRun(seed_cfg, run_dir, info, tracker))
    except BaseException:
        for built in seeds:
            built.tracker.finish("failed")
        vec.close()
        raise
    run = Run(cfg, seeds, vec, envs, policy, updater, motivation, upload, storage, own_draws, iteration, global_step,
              iterations)  # fmt: skip
    return run, None if first is None else [s for s in saved if s is not None]


def check_one_start(saved: list[dict[str, Any] | None], run_dirs: list[Path]) -> None:
    """Seeds trained together step together: all start fresh, or all resume at one iteration."""
    starts = {None if s is None else int(s["iteration"]) for s in saved}
    if len(starts) > 1:
        where = ", ".join(f"{d.name}: {'new' if s is None else 'iteration ' + str(s['iteration'])}"
                          for d, s in zip(run_dirs, saved, strict=True))  # fmt: skip
        raise CheckpointError(
            f"seeds trained in one process must start at one iteration ({where}); run them with "
            "seeds_per_process=1, or as separate processes, until they are level"
        )


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


def resume_or_warm_up(run: Run, saved: list[dict[str, Any]] | None) -> torch.Tensor:
    """Reset the envs, then resume from ``saved`` (a checkpoint per seed) or warm up the motivation; return s_0 on
    the device."""
    envs = run.envs
    obs_np = envs.reset()
    if saved is not None:
        resume(run, saved)
    elif run.motivation.needs_warmup and run.cfg.motivation.warmup_steps > 0:
        # Random steps must not count as exploration by the agent: restore the counters afterwards.
        exploration_before = envs.exploration_state()
        warm_up(envs, run.motivation, run.cfg.motivation.warmup_steps, run.upload, len(run.seeds))
        envs.load_exploration_state(exploration_before)
        obs_np = envs.reset()
    return run.upload(obs_np)


def warm_up(envs: VecEnv, motivation: Motivation, steps: int, upload: Uploader, seeds: int = 1) -> None:
    """Fill the motivation's observation statistics with random-action steps (seed: 256 per env); several seeds
    each draw their envs' actions as a lone run would."""
    rngs = [np.random.default_rng(0) for _ in range(seeds)]
    for _ in range(steps):
        actions = np.concatenate([rng.integers(0, envs.num_actions, size=envs.num_envs // seeds) for rng in rngs])
        result = envs.step(actions)
        motivation.update_stats(upload(result.obs))


# ---- the steps of an iteration ---------------------------------------------------------------------------------
def env_parts(num_envs: int, double_buffer: bool) -> list[slice]:
    """The parts of the envs that step one at a time: all together, or two halves (``perf.double_buffer``)."""
    if not double_buffer:
        return [slice(None)]
    half = num_envs // 2
    return [slice(0, half), slice(half, num_envs)]


def collect(run: Run, obs: torch.Tensor, timer: PhaseTimer) -> torch.Tensor:
    """Step the N envs T times from s_0 = ``obs`` into the storage (r_int(s_t) included); return s_T.

    Owns the acting: sampling actions, stepping the envs, r_int(s_t) and the motivation's observation
    statistics, the finished episodes, and ``global_step``.

    The envs step in parts (:func:`env_parts`), one part's step in flight at a time, and the networks work
    while it is: with one part (the default), r_int(s_t) is computed while the emulators step
    (``perf.overlap_env``); with two halves (``perf.double_buffer``), each half's policy pass and r_int are
    computed while the other half steps, so the emulators and the networks rarely wait for each other.
    """
    cfg, envs, updater, motivation, storage = run.cfg, run.envs, run.updater, run.motivation, run.storage
    parts = env_parts(envs.num_envs, cfg.perf.double_buffer)
    part_obs = [obs[part] for part in parts]
    in_flight: tuple[int, int] | None = None  # (part, step) of the step the emulators are on

    def finish(i: int, step: int) -> None:
        """Wait for part i's step, store what the envs returned, and take its s_{t+1}."""
        with timer.phase("env"):  # time the loop waits for the emulators
            result = envs.step_wait()
        storage.insert_env(step, result.reward, result.done, parts[i])
        for episode in result.episodes:  # to the seed whose env it was (env j N + n is env n of seed j)
            run.seeds[episode.env_index // cfg.ppo.num_envs].episodes.add([episode])
        part_obs[i] = run.upload(result.obs)
        if motivation.stats_from_next:
            with torch.no_grad():
                motivation.update_stats(part_obs[i])  # the author's RND: s_{t+1}, after r_int(s_t)

    def motivate(i: int, step: int) -> torch.Tensor:
        """The motivation's statistics and r_int(s_t) of part i."""
        with torch.no_grad():
            if not motivation.stats_from_next:
                motivation.update_stats(part_obs[i])
            return motivation.reward(part_obs[i], step)

    for step in range(cfg.ppo.num_steps):
        for i, part in enumerate(parts):
            if in_flight is not None and in_flight[0] == i:  # this part's s_t is the step in flight's result
                finish(*in_flight)
                in_flight = None
            with torch.no_grad():
                out = updater.forward(part_obs[i])
                # Non-finite logits (a seed stopped by a divergence still computes in its slice of the stack; a
                # run resumed from a diverged checkpoint) must not stop the sampling: the update after them reports
                # the divergence in one line (check_finite), where CUDA's sampler would abort the process on a
                # device-side assert. Finite logits are unchanged. validate_args=False: torch's checks of the
                # logits and of each log_prob's actions would wait on the device, two syncs per step on CUDA.
                dist = Categorical(logits=out.logits.nan_to_num(), validate_args=False)
                action = dist.sample() if run.generators is None else sample_actions(dist.probs, run.generators)
            actions_np = action.cpu().numpy()
            r_int = None if cfg.perf.overlap_env else motivate(i, step)
            if in_flight is not None:  # one step in flight at a time: the other part's ends before this one starts
                finish(*in_flight)
            envs.step_async(actions_np, part)
            in_flight = (i, step)
            if r_int is None:
                r_int = motivate(i, step)  # while the emulators run
            storage.insert(step, part_obs[i], action, dist.log_prob(action), out.value_ext, out.value_int, r_int,
                           part)  # fmt: skip
    if in_flight is not None:
        finish(*in_flight)
    obs = part_obs[0] if len(parts) == 1 else torch.cat(part_obs)
    storage.finish(obs)  # s_T (the last states' successors, for SND-VIC / SND-STD), rewards and dones
    run.global_step += run.batch_size
    return obs


def advantages(run: Run, last_obs: torch.Tensor) -> Batch:
    """GAE per stream (bootstrapped from V(s_T)), then the 2:1 combination (unnormalised in the seed)."""
    with torch.no_grad():
        last = run.updater.forward(last_obs)
    return rollout_batch(run.storage, last.value_ext, last.value_int, run.cfg.ppo)


def update(updater: PPOUpdater, motivation: Motivation, storage: RolloutStorage, batch: Batch, schedule: str) -> Stats:
    """PPO epochs, with the motivation trained per minibatch (seed) or in one pass afterwards (SND paper)."""
    motivation.begin_update(storage.flat_obs())
    if schedule == "per_minibatch":
        return updater.update(batch, after_minibatch=partial(_update_on, motivation, storage))
    stats = updater.update(batch)
    stats.update(_one_pass(motivation, storage, updater.cfg.minibatch_size, updater.seeds))
    return stats


def log(run: Run, seed: SeedRun, metrics: dict[str, Any]) -> None:
    """Write one metric line of ``seed``, and its console line every ``logger.console_every`` iterations (and at
    the end). ``seed.last_log`` keeps the latest value of every metric, which the console line and the run's
    summary show (a key missing from this line, such as ``episode/*``, keeps its last value)."""
    seed.tracker.log(metrics)
    seed.last_log = {**seed.last_log, **metrics}
    if run.due(run.cfg.logger.console_every):
        seed.tracker.console(run.iteration, run.iterations, seed.last_log)


def checkpoint(run: Run) -> None:
    """Save each training seed's state atomically, then commit its tracker: W&B only gets lines a checkpoint
    covers.

    With ``budget.keep_checkpoints`` the checkpoints of some iterations are also kept as snapshots
    (``checkpoints/step-<global_step>.pt``; which ones: :func:`~rlsweep.training.checkpoint.snapshot_due`).
    """
    budget = run.cfg.budget
    snapshot = snapshot_due(run.iteration, run.iterations, budget.checkpoint_every, budget.keep_checkpoints)
    states = checkpoint_states(run)
    for j, seed in run.training():
        save_checkpoint(states[j], seed.run_dir, snapshot=snapshot)
        seed.tracker.commit()


PAUSE_LIMIT_S = 600.0  # a paused run nobody stops (a test that failed first) must not hold its slot for ever


class DivergenceError(RuntimeError):
    """The update produced a non-finite loss, gradient norm or value; the message says where and what."""


def check_finite(run: Run, stats: Stats, batch: Batch) -> None:
    """Stop each seed whose update produced a non-finite loss, gradient norm or value, with a
    :class:`DivergenceError` naming the iteration and every non-finite quantity (one device read)."""
    k, steps = len(run.seeds), run.storage.num_steps
    checked = {key: v.detach().reshape(k, -1) for key, v in stats.items() if key.startswith(("loss/", "ppo/grad"))}
    checked.update({
        "value/ext": by_seed(run.storage.values_ext, steps, k),
        "value/int": by_seed(run.storage.values_int, steps, k),
        "advantages": by_seed(batch.advantages, steps, k),
    })  # fmt: skip
    # finite[i][j]: whether seed j's part of the i-th quantity is finite everywhere
    finite = torch.stack([torch.isfinite(v).all(dim=1) for v in checked.values()]).tolist()
    for j, seed in run.training():
        bad = ", ".join(name for name, ok in zip(checked, finite, strict=True) if not ok[j])
        if bad:
            # Nothing diverged is ever saved, so what is on disk is the last good checkpoint, if one was written yet.
            kept = (
                f"its last checkpoint ({CHECKPOINT_NAME}) is kept"
                if (seed.run_dir / CHECKPOINT_NAME).exists()
                else "it has no checkpoint yet (a rerun starts from step 0)"
            )
            seed.error = DivergenceError(
                f"non-finite {bad} at iteration {run.iteration}; the run stopped there and {kept}"
            )
            if k > 1:
                print(f"[{seed.info['run_id']}] {seed.error}; the other seeds go on", file=sys.stderr, flush=True)


def wait_to_be_stopped(run: Run) -> None:
    """``debug.pause_at_iteration``: hold the run at a known checkpoint until a signal stops it (tests only)."""
    names = ", ".join(seed.info["run_id"] for seed in run.seeds)
    print(f"[{names}] paused at iteration {run.iteration} (debug.pause_at_iteration): waiting to be stopped",
          flush=True)  # fmt: skip
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(1.0)  # signal handlers (SIGTERM, SLURM's USR2) run between sleeps
    raise RuntimeError(f"debug.pause_at_iteration={run.iteration}: nothing stopped the run in {PAUSE_LIMIT_S:.0f} s")


def close(run: Run, finished: bool, superseded: bool) -> None:
    """Close each seed's tracker with its status, then the envs. A superseded run leaves the record alone."""
    for seed in run.seeds:
        status = "superseded" if superseded else "completed" if finished and seed.error is None else "failed"
        try:
            seed.tracker.finish(status, save=not superseded)
        except Exception as e:
            if status == "completed":
                raise
            # Already failing (or preempted: SLURM may have killed W&B's service first): keep the first error.
            print(f"[{seed.info['run_id']}] could not close the tracker cleanly: {e!r}", file=sys.stderr, flush=True)
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
    """Wall-clock seconds per phase (``perf/time_*``) and agent steps per second, since the last log line.

    With ``device`` (given when the phases are reported, ``debug.profile``) a phase on CUDA ends when the work it
    queued on the GPU has ended: otherwise the update's kernels, queued and not yet run, would be timed in the
    phase that next waits on the device.
    """

    def __init__(self, global_step: int, device: torch.device | None = None) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.window_start, self.window_step = time.perf_counter(), global_step
        self.cuda = device if device is not None and device.type == "cuda" else None  # the device to wait for

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        if self.cuda is not None:
            torch.cuda.synchronize(self.cuda)
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


def iteration_metrics(run: Run, j: int, stats: Stats, batch: Batch, perf: dict[str, float]) -> dict[str, Any]:
    """Seed ``j``'s metric line, its keys in a fixed order; empties its episode statistics."""
    k = len(run.seeds)
    seed, storage = run.seeds[j], run.storage

    def own(x: torch.Tensor) -> torch.Tensor:  # seed j's samples of a rollout quantity
        return by_seed(x, storage.num_steps, k)[j]

    metrics: dict[str, Any] = {"global_step": run.global_step, "iteration": run.iteration}
    metrics.update(seed.episodes.flush())
    metrics.update({f"explore/{key}": float(v) for key, v in run.seed_envs[j].exploration().items()})
    metrics.update(to_floats({key: seed_value(v, j) for key, v in stats.items()}))
    metrics["ppo/explained_var_ext"] = explained_variance(own(storage.values_ext), own(batch.returns_ext))
    metrics["ppo/explained_var_int"] = explained_variance(own(storage.values_int), own(batch.returns_int))
    r_int = own(storage.rewards_int)
    metrics["motivation/int_reward_mean"] = float(r_int.mean())
    metrics["motivation/int_reward_std"] = float(r_int.std())
    metrics["motivation/int_reward_max"] = float(r_int.max())
    metrics.update(perf)
    return metrics


def checkpoint_states(run: Run) -> list[dict[str, Any]]:
    """Everything a resumed attempt of each seed needs to continue where it is (a lone run's checkpoint each);
    ``resume`` reads them back."""
    k = len(run.seeds)
    policies = seed_states(run.policy, k)
    optimizers = seed_states(run.updater.optimizer, k)
    motivations = run.motivation.state_dicts()
    rng = rng_state()
    device = run.storage.obs.device
    return [
        {
            "iteration": run.iteration,
            "global_step": run.global_step,
            "policy": policies[j],
            "optimizer": optimizers[j],
            "motivation": motivations[j],
            "exploration": run.seed_envs[j].exploration_state(),
            "rng": rng if run.generators is None else generator_state(rng, run.generators[j], device),
            "wandb_id": seed.tracker.info.get("wandb_id"),
            # what the checkpoint was trained under: a resume under another config is refused (check_same_training)
            "fingerprint": seed.info["fingerprint"],
            "training": seed.info["training"],
        }
        for j, seed in enumerate(run.seeds)
    ]


def resume(run: Run, saved: list[dict[str, Any]]) -> None:
    """Restore the states ``checkpoint_states`` saved (``set_up`` already took the iteration and global step)."""
    load_seed_states(run.policy, [s["policy"] for s in saved])
    load_seed_states(run.updater.optimizer, [s["optimizer"] for s in saved])
    run.motivation.load_state_dicts([s["motivation"] for s in saved])
    for envs, s in zip(run.seed_envs, saved, strict=True):
        envs.load_exploration_state(s["exploration"])
    set_rng_state(saved[0]["rng"])
    if run.generators is not None:
        for generator, s in zip(run.generators, saved, strict=True):
            load_generator_state(generator, s["rng"], run.storage.obs.device)
    for seed in run.seeds:
        print(f"[{seed.info['run_id']}] resumed at iteration {run.iteration}, step {run.global_step}", flush=True)


def _motivation_batch(storage: RolloutStorage, idx: torch.Tensor) -> MotivationBatch:
    flat = storage.flat_obs()
    return MotivationBatch(obs=flat[idx], indices=idx, rollout_obs=flat, successors=storage.next_obs)


def _update_on(motivation: Motivation, storage: RolloutStorage, idx: torch.Tensor) -> Stats:
    return motivation.update(_motivation_batch(storage, idx))


def _one_pass(motivation: Motivation, storage: RolloutStorage, minibatch: int, seeds: int = 1) -> Stats:
    """The SND paper's schedule: one pass over (each seed's) rollout in consecutive minibatches."""
    per_seed = storage.num_envs // seeds
    size = storage.num_steps * per_seed
    history = []
    for start in range(0, size, minibatch):
        local = torch.arange(start, min(start + minibatch, size), device=storage.obs.device)
        idx = seed_rows([local] * seeds, per_seed)
        history.append(motivation.update(_motivation_batch(storage, idx)))
    return mean_stats(history)
