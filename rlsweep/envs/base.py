"""The vectorised-environment contract every backend (envpool Atari, Procgen, the synthetic test envs) fulfils.

Observations are uint8 arrays of shape (num_envs, C, H, W); for stacked frames the **newest frame is the last
channel** (envpool's order; the seed's wrappers put it at index 0, so "channel 0" in the seed reads ``obs[:, -1]``
here; with RGB frames the newest frame is the last ``frame_channels`` channels). Episodes reset automatically
within ``step`` (same-step semantics): when ``done[i]`` is true, ``obs[i]`` is already the first observation of
env i's next episode, so the training loop never sees a dummy transition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class EpisodeInfo:
    """One finished episode of one env."""

    env_index: int
    episode_return: float  # sum of the *training* reward (binary on Atari)
    score: float  # sum of the raw game reward (the score a human reads)
    length: int  # agent steps
    rooms: int  # distinct rooms visited in this episode (0 where the env has no rooms)


@dataclass
class StepResult:
    obs: np.ndarray  # uint8 (N, C, H, W), after autoreset for done envs
    reward: np.ndarray  # float32 (N,), training reward
    done: np.ndarray  # bool (N,), terminated or truncated (both cut GAE, as in the seed)
    episodes: list[EpisodeInfo]  # episodes that ended on this step


class VecEnv(Protocol):
    num_envs: int
    obs_shape: tuple[int, int, int]  # (C, H, W) = (frame_stack * frame_channels, H, W)
    num_actions: int
    frame_channels: int  # channels of one frame: 1 (grey) or 3 (RGB Procgen); the newest frame is obs[:, -k:]

    def reset(self) -> np.ndarray:
        """Reset every env; returns uint8 (N, C, H, W)."""
        ...

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every env with int actions of shape (N,)."""
        ...

    def step_async(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        """Start :meth:`step` and return at once where the backend can (envpool); ``step_wait`` finishes it.

        The training loop computes the intrinsic reward of s_t between the two calls, so the emulators and the
        networks work at the same time. Backends that cannot overlap step in ``step_wait``. ``part``, a
        contiguous slice of the envs, steps those envs only (``perf.double_buffer``; envpool backends), with
        ``actions`` theirs; the others refuse a part.
        """
        ...

    def step_wait(self) -> StepResult:
        """The result of the step started by :meth:`step_async` (of its part's envs; episodes numbered among
        all envs)."""
        ...

    def exploration(self) -> dict[str, float]:
        """Run-wide exploration counters so far, e.g. {"rooms": 7} or {"cells": 120, "rooms": 3}."""
        ...

    def exploration_state(self) -> dict[str, Any]:
        """Picklable state of the run-wide counters (saved in checkpoints)."""
        ...

    def load_exploration_state(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class SyncStepping(ABC):
    """``step_async``/``step_wait`` for backends without asynchronous stepping: the step runs in ``step_wait``."""

    _pending: np.ndarray | None = None

    @abstractmethod
    def step(self, actions: np.ndarray) -> StepResult: ...

    def step_async(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        if part != slice(None):
            raise ValueError(f"{type(self).__name__} steps all its envs at once (perf.double_buffer needs envpool)")
        self._pending = np.array(actions, copy=True)

    def step_wait(self) -> StepResult:
        if self._pending is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._pending = self._pending, None
        return self.step(actions)


class NoExplorationCounters:
    """For envs without run-wide exploration counters (no rooms or cells to count)."""

    def exploration(self) -> dict[str, float]:
        return {}

    def exploration_state(self) -> dict[str, Any]:
        return {}

    def load_exploration_state(self, state: dict[str, Any]) -> None:
        return None
