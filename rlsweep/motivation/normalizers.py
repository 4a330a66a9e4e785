"""Running statistics on the run's device: per-pixel observation mean/variance and reward scale."""

from __future__ import annotations

from typing import Any

import torch


class RunningMeanStd:
    """Mean and variance over all samples seen (parallel Welford / Chan et al. update), on ``device``.

    With a fixed number of envs per step this weights every agent step equally, as the seed's RunningStats.
    """

    def __init__(self, shape: tuple[int, ...], device: torch.device | str = "cpu", eps: float = 1e-4) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = eps  # a tiny prior count keeps the first update finite

    def update(self, x: torch.Tensor) -> None:
        # The batch's own moments in its dtype (float32 frames: a batch is at most a few hundred samples), the
        # running combination in float64 (it accumulates over hundreds of millions of samples).
        batch_var, batch_mean = torch.var_mean(x, dim=0, correction=0)
        batch_mean, batch_var = batch_mean.to(torch.float64), batch_var.to(torch.float64)
        n = x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.cpu(), "var": self.var.cpu(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].to(self.mean.device)
        self.var = state["var"].to(self.var.device)
        self.count = float(state["count"])
