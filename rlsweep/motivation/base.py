"""The protocol every motivation implements, and the minibatch it trains on; the loop knows nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar

import torch

M = TypeVar("M")


@dataclass
class MotivationBatch:
    """What one motivation update sees: a minibatch of transitions plus the whole current rollout.

    RND reads ``obs`` only; SND-VIC and SND-STD pair ``obs`` with ``next_obs`` (consecutive states); SND-V draws
    its pairs from ``rollout_obs`` (method.md §4.6: "pairs from the current rollout buffer"). ``next_obs`` is
    gathered only when read: RND and SND-V would otherwise copy a second minibatch of frames for nothing.
    """

    obs: torch.Tensor  # uint8 (B, C, H, W): s_t, the states the actions were taken in
    indices: torch.Tensor  # long (B,): rows of ``rollout_obs`` the minibatch was taken from
    rollout_obs: torch.Tensor  # uint8 (T * N, C, H, W): every state of the current rollout (a view, not a copy)
    successors: Callable[[torch.Tensor], torch.Tensor]  # rows -> s_{t+1} of those rows

    @cached_property
    def next_obs(self) -> torch.Tensor:
        """uint8 (B, C, H, W): s_{t+1}; after a done, the next episode's first state."""
        return self.successors(self.indices)

    @classmethod
    def from_obs(cls, obs: torch.Tensor, next_obs: torch.Tensor | None = None) -> MotivationBatch:
        """A batch that is its own rollout (tests, tools): ``next_obs`` defaults to ``obs``."""
        indices = torch.arange(obs.shape[0], device=obs.device)
        nxt = obs if next_obs is None else next_obs
        return cls(obs, indices, obs, lambda rows: nxt[rows])


class Motivation(Protocol):
    """What the training loop asks of an intrinsic motivation. A class that provides it registers under its
    ``name`` with :func:`register_motivation`; the motivation group's YAML of that name holds its settings."""

    name: str
    needs_warmup: bool  # whether observation statistics must be filled with random steps first
    stats_from_next: bool  # statistics fed s_{t+1} after the step (the author's RND) instead of s_t before r_int

    def update_stats(self, obs: torch.Tensor) -> None:
        """Feed one agent step's observations (uint8 (N, C, H, W)) to the running statistics."""
        ...

    def reward(self, obs: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """Intrinsic reward (N,) for the states the actions are taken in (rollout step ``step``); no gradient."""
        ...

    def begin_update(self, rollout_obs: torch.Tensor) -> None:
        """An update on the rollout ``rollout_obs`` (uint8 (T N, C, H, W)) starts; its :meth:`update` calls follow."""
        ...

    def update(self, batch: MotivationBatch) -> dict[str, torch.Tensor]:
        """One optimisation step on a minibatch; returns loss/motivation metrics as 0-dim device tensors."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def stack(self, others: list[Any], generators: list[torch.Generator]) -> None:
        """Train the same motivation built for more seeds of the configuration along with this one's, in one
        process (``seeds_per_process``; :mod:`rlsweep.compute.stacked`): inputs become seed-major blocks, and each
        seed's random draws come from its generator."""
        ...

    def state_dicts(self) -> list[dict[str, Any]]:
        """One lone run's :meth:`state_dict` per seed trained here."""
        ...

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None: ...


# name -> class; each class's module registers it (rlsweep.motivation imports every module of the package).
MOTIVATIONS: dict[str, type] = {}


def register_motivation(cls: type[M]) -> type[M]:
    """Class decorator: build ``cls`` for ``motivation.name == cls.name``. The constructor takes
    ``(cfg, obs_shape, device, frame_channels, perf, num_envs)``, as :func:`rlsweep.motivation.build_motivation`
    passes them."""
    name = str(cls.name)  # type: ignore[attr-defined]
    if name in MOTIVATIONS:
        raise ValueError(
            f"motivation {name!r} is registered twice: {MOTIVATIONS[name].__qualname__}, {cls.__qualname__}"
        )
    MOTIVATIONS[name] = cls
    return cls


def check_frame_channels(obs_shape: tuple[int, int, int], frame_channels: int) -> None:
    """A motivation reads the newest frame, the last ``frame_channels`` channels of a stacked observation: they must
    divide its channels (ValueError otherwise)."""
    if frame_channels < 1 or obs_shape[0] % frame_channels:
        raise ValueError(f"frame_channels={frame_channels} does not divide the observation's {obs_shape[0]}")
