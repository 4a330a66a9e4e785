"""The protocol every motivation implements, and the minibatch it trains on; the loop knows nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass
class MotivationBatch:
    """What one motivation update sees: a minibatch of transitions plus the whole current rollout.

    RND reads ``obs`` only; SND-VIC and SND-STD pair ``obs`` with ``next_obs`` (consecutive states); SND-V draws
    its pairs from ``rollout_obs`` (method.md §4.6: "pairs from the current rollout buffer").
    """

    obs: torch.Tensor  # uint8 (B, C, H, W): s_t, the states the actions were taken in
    next_obs: torch.Tensor  # uint8 (B, C, H, W): s_{t+1}; after a done, the next episode's first state
    indices: torch.Tensor  # long (B,): rows of ``rollout_obs`` the minibatch was taken from
    rollout_obs: torch.Tensor  # uint8 (T * N, C, H, W): every state of the current rollout (a view, not a copy)

    @classmethod
    def from_obs(cls, obs: torch.Tensor, next_obs: torch.Tensor | None = None) -> MotivationBatch:
        """A batch that is its own rollout (tests, tools): ``next_obs`` defaults to ``obs``."""
        indices = torch.arange(obs.shape[0], device=obs.device)
        return cls(obs, obs if next_obs is None else next_obs, indices, obs)


class Motivation(Protocol):
    name: str
    needs_warmup: bool  # whether observation statistics must be filled with random steps first

    def update_stats(self, obs: torch.Tensor) -> None:
        """Feed one agent step's observations (uint8 (N, C, H, W)) to the running statistics."""
        ...

    def reward(self, obs: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward (N,) for the states the actions are taken in; no gradient."""
        ...

    def update(self, batch: MotivationBatch) -> dict[str, float]:
        """One optimisation step on a minibatch; returns loss/motivation metrics."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
