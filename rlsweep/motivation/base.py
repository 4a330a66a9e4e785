"""The protocol every motivation implements; the training loop knows nothing else about it."""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Motivation(Protocol):
    name: str
    needs_warmup: bool  # whether observation statistics must be filled with random steps first

    def update_stats(self, obs: torch.Tensor) -> None:
        """Feed one agent step's observations (uint8 (N, C, H, W)) to the running statistics."""
        ...

    def reward(self, obs: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward (N,) for the states the actions are taken in; no gradient."""
        ...

    def update(self, obs: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a minibatch of observations; returns loss/motivation metrics."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
