"""Plain PPO: the intrinsic reward is zero and nothing trains (the paper's baseline)."""

from __future__ import annotations

from typing import Any

import torch

from rlsweep.compute.perf import Stats
from rlsweep.motivation.base import MotivationBatch, register_motivation


@register_motivation
class NoMotivation:
    name = "none"
    needs_warmup = False
    stats_from_next = False
    seeds = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Built like every motivation (rlsweep.motivation.build_motivation); nothing to set up."""

    def update_stats(self, obs: torch.Tensor) -> None:
        return None

    def reward(self, obs: torch.Tensor, step: int | None = None) -> torch.Tensor:
        return torch.zeros(obs.shape[0], device=obs.device)

    def begin_update(self, rollout_obs: torch.Tensor) -> None:
        return None

    def update(self, batch: MotivationBatch) -> Stats:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def stack(self, others: list[NoMotivation], generators: list[torch.Generator]) -> None:
        self.seeds = 1 + len(others)  # nothing else to stack: no networks, no statistics

    def state_dicts(self) -> list[dict[str, Any]]:
        return [{} for _ in range(self.seeds)]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        return None
