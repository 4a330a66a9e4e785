"""Procgen backend: ``procgen.ProcgenGym3Env`` behind the :class:`~rlsweep.envs.base.VecEnv` contract.

This module owns the translation from gym3's ``act`` / ``observe`` API to the project contract (method.md §3.5,
[SND] ``ProcgenWrapper``: exploration mode, RGB 64x64, 2 stacked frames, 1 % random actions):

* **Same-step autoreset comes for free.** gym3 envs reset themselves: after ``act``, ``observe()`` returns
  ``(reward, obs, first)`` where ``reward`` is the reward of the action just taken and ``first[i]`` says that
  ``obs[i]`` is the *first* observation of a new episode -- i.e. the action just taken ended env i's previous
  episode. So ``done = first`` after a step, the reward belongs to the finished episode and the observation to
  the next one, exactly the contract (checked in ``tests/integration/test_snd_runs.py``). The ``first`` flags
  of the very first ``observe()`` (all true) belong to no step and are ignored.
* **Frames.** ``obs["rgb"]`` is uint8 (N, 64, 64, 3). Kept in colour (3 channels per frame, the paper) or
  converted to grey (ITU-R 601 luma, 1 channel) per ``grayscale``; resized with area interpolation only when
  ``frame_size`` is not 64. The stack is kept here, newest frame in the last channels; a new episode fills
  every slot with its first frame (as envpool does), so no frame of the old episode leaks into the new one.
  ``frame_channels`` (3 or 1) tells the motivation how many trailing channels make the newest frame.
* **No per-env reset.** gym3 cannot reset one env; ``reset()`` on an env that has already stepped builds a new
  ``ProcgenGym3Env`` with a derived seed (the training loop resets only once, after the warm-up).
* **Episode length** is Procgen's own (e.g. 1000 steps); ``max_episode_steps`` does not apply here.
* **Random actions** (paper: 1 %) replace the agent's action by a uniform one with ``random_action_prob``,
  drawn from a generator seeded with the run's seed.
* Procgen has no rooms: ``exploration()`` is empty and ``EpisodeInfo.rooms`` is 0.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import numpy as np

from rlsweep.envs.base import EpisodeInfo, NoExplorationCounters, StepResult, SyncStepping

__all__ = ["PROCGEN_GAMES", "ProcgenEnv", "procgen_env_ids"]

#: procgen 0.10.7's ``procgen.env.ENV_NAMES`` (fixed list; kept here so that validating an id does not import
#: procgen, which takes seconds and prints gym's deprecation banner).
PROCGEN_GAMES: tuple[str, ...] = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot", "heist",
    "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)  # fmt: skip
_PREFIX = "procgen-"
_NATIVE_SIDE = 64
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def procgen_env_ids() -> tuple[str, ...]:
    """``procgen-<game>`` for every Procgen game."""
    return tuple(f"{_PREFIX}{g}" for g in PROCGEN_GAMES)


def _import_procgen() -> Any:
    # gym (pulled in by procgen) prints a deprecation banner on import; it says nothing about this use.
    with contextlib.redirect_stderr(io.StringIO()):
        import procgen
    return procgen


class ProcgenEnv(SyncStepping, NoExplorationCounters):
    """N Procgen games of one kind in one gym3 env, with the seed-style frame stack and episode statistics."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        seed: int,
        *,
        frame_size: int = 64,
        frame_stack: int = 2,
        grayscale: bool = False,
        distribution_mode: str = "exploration",
        random_action_prob: float = 0.0,
        binary_reward: bool = False,
        num_threads: int = 0,
    ) -> None:
        if not env_id.startswith(_PREFIX) or env_id[len(_PREFIX) :] not in PROCGEN_GAMES:
            raise ValueError(f"env.id={env_id!r} is not a Procgen id; allowed: {', '.join(procgen_env_ids())}")
        self.env_id = env_id
        self.game = env_id[len(_PREFIX) :]
        self.num_envs = num_envs
        self.frame_channels = 1 if grayscale else 3
        self.obs_shape = (frame_stack * self.frame_channels, frame_size, frame_size)
        self._seed = seed
        self._resets = 0
        self._distribution_mode = distribution_mode
        self._threads = min(num_threads if num_threads > 0 else (os.cpu_count() or 1), num_envs)
        self._grayscale = grayscale
        self._frame_size = frame_size
        self._random_action_prob = random_action_prob
        self._binary_reward = binary_reward
        self._rng = np.random.default_rng(seed)
        self._env = self._make(seed)
        self.num_actions = int(self._env.ac_space.eltype.n)
        self._fresh = True  # no step since the env was built: its first observe() is a valid reset
        self._stack = np.zeros((num_envs, *self.obs_shape), dtype=np.uint8)
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._score = np.zeros(num_envs, dtype=np.float64)
        self._length = np.zeros(num_envs, dtype=np.int64)

    def _make(self, seed: int) -> Any:
        procgen = _import_procgen()
        return procgen.ProcgenGym3Env(
            num=self.num_envs,
            env_name=self.game,
            distribution_mode=self._distribution_mode,
            rand_seed=int(seed) % (2**31 - 1),
            num_threads=self._threads,
        )

    def _frames(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (N, 64, 64, 3) -> uint8 (N, frame_channels, frame_size, frame_size)."""
        if self._frame_size != _NATIVE_SIDE:
            import cv2

            size = (self._frame_size, self._frame_size)
            rgb = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in rgb])
        if self._grayscale:
            grey = np.rint(rgb.astype(np.float32) @ _LUMA).clip(0, 255).astype(np.uint8)
            return grey[:, None]
        return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))

    # ---- VecEnv --------------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        if not self._fresh:
            self._resets += 1
            self.close()
            self._env = self._make(self._seed + 7_919 * self._resets)
        self._fresh = False
        _, obs, _ = self._env.observe()
        frames = self._frames(np.asarray(obs["rgb"]))
        self._stack[:] = np.tile(frames, (1, self.obs_shape[0] // self.frame_channels, 1, 1))
        self._ep_return[:] = 0.0
        self._score[:] = 0.0
        self._length[:] = 0
        return self._stack.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        self._fresh = False
        actions = np.asarray(actions).astype(np.int32, copy=True).reshape(self.num_envs)
        if self._random_action_prob > 0:
            swap = self._rng.random(self.num_envs) < self._random_action_prob
            actions[swap] = self._rng.integers(0, self.num_actions, size=int(swap.sum()))
        self._env.act(actions)
        raw, obs, first = self._env.observe()
        raw = np.asarray(raw, dtype=np.float64)
        done = np.asarray(first, dtype=bool).copy()
        reward = (raw > 0).astype(np.float32) if self._binary_reward else raw.astype(np.float32)
        self._ep_return += reward
        self._score += raw
        self._length += 1

        frames = self._frames(np.asarray(obs["rgb"]))
        c = self.frame_channels
        self._stack[:, :-c] = self._stack[:, c:]
        self._stack[:, -c:] = frames
        episodes: list[EpisodeInfo] = []
        if done.any():
            ids = np.flatnonzero(done)
            for i in ids:
                episodes.append(
                    EpisodeInfo(int(i), float(self._ep_return[i]), float(self._score[i]), int(self._length[i]), 0)
                )
            # A new episode starts from a stack of its first frame only.
            self._stack[ids] = np.tile(frames[ids], (1, self.obs_shape[0] // c, 1, 1))
            self._ep_return[ids] = 0.0
            self._score[ids] = 0.0
            self._length[ids] = 0
        return StepResult(obs=self._stack.copy(), reward=reward, done=done, episodes=episodes)

    def close(self) -> None:
        close = getattr(self._env, "close", None)
        if close is not None:
            close()
