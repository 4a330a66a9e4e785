"""The envs of several seeds trained in one process (``seeds_per_process``), seen by the loop as one VecEnv.

Seed j keeps its own env pool (built with its own seed, as a lone run's) and its own exploration counters; the
loop steps k x N envs, seed-major: env ``j * N + n`` is env n of seed j (the layout of :mod:`rlsweep.compute.stacked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rlsweep.envs.base import StepResult, VecEnv


class SeedEnvs:
    """k VecEnvs of one shape stepped as one of k x N envs; episodes keep their env index in that numbering."""

    def __init__(self, members: Sequence[VecEnv]) -> None:
        first = members[0]
        for env in members[1:]:
            if (env.num_envs, env.obs_shape, env.num_actions) != (first.num_envs, first.obs_shape, first.num_actions):
                raise ValueError("the envs of one process's seeds must have one shape")
        self.members = list(members)
        self.per_seed = first.num_envs
        self.num_envs = first.num_envs * len(self.members)
        self.obs_shape = first.obs_shape
        self.num_actions = first.num_actions
        self.frame_channels = first.frame_channels

    def reset(self) -> np.ndarray:
        return np.concatenate([env.reset() for env in self.members])

    def step(self, actions: np.ndarray) -> StepResult:
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        if part != slice(None):
            raise ValueError("the envs of several seeds step together (perf.double_buffer needs one seed)")
        # Every pool starts before any is waited for: their emulators run at the same time.
        for j, env in enumerate(self.members):
            env.step_async(actions[j * self.per_seed : (j + 1) * self.per_seed])

    def step_wait(self) -> StepResult:
        results = [env.step_wait() for env in self.members]
        episodes = [replace(e, env_index=j * self.per_seed + e.env_index)
                    for j, r in enumerate(results) for e in r.episodes]  # fmt: skip
        return StepResult(
            obs=np.concatenate([r.obs for r in results]),
            reward=np.concatenate([r.reward for r in results]),
            done=np.concatenate([r.done for r in results]),
            episodes=episodes,
        )

    def seed_of(self, env_index: int) -> int:
        return env_index // self.per_seed

    def exploration(self) -> dict[str, float]:
        raise TypeError("exploration counters are per seed: read SeedEnvs.members[j].exploration()")

    def exploration_state(self) -> dict[str, Any]:
        return {"seeds": [env.exploration_state() for env in self.members]}

    def load_exploration_state(self, state: dict[str, Any]) -> None:
        for env, s in zip(self.members, state["seeds"], strict=True):
            env.load_exploration_state(s)

    def close(self) -> None:
        for env in self.members:
            env.close()
