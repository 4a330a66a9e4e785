"""Running statistics on the run's device: per-pixel observation mean/variance and reward scale."""

from __future__ import annotations

from typing import Any

import torch


class RunningMeanStd:
    """Mean and variance over all samples seen (parallel Welford / Chan et al. update), on ``device``.

    With a fixed number of envs per step this weights every agent step equally, as the seed's RunningStats.

    ``seeds`` > 1 keeps one set of statistics per seed (``seeds_per_process``, :mod:`rlsweep.compute.stacked`): a batch
    of k B samples is k seed-major blocks, ``mean`` and ``var`` get a leading seed axis, and :meth:`per_sample`
    spreads a statistic back over a batch's rows.
    """

    def __init__(
        self, shape: tuple[int, ...], device: torch.device | str = "cpu", eps: float = 1e-4, seeds: int = 1
    ) -> None:
        self.seeds = seeds
        full = shape if seeds == 1 else (seeds, *shape)
        self.mean = torch.zeros(full, dtype=torch.float64, device=device)
        self.var = torch.ones(full, dtype=torch.float64, device=device)
        self.count = eps  # a tiny prior count keeps the first update finite (every seed sees as many samples)

    def update(self, x: torch.Tensor) -> None:
        # The batch's own moments in its dtype (float32 frames: a batch is at most a few hundred samples), the
        # running combination in float64 (it accumulates over hundreds of millions of samples).
        if self.seeds == 1:
            batch_var, batch_mean = torch.var_mean(x, dim=0, correction=0)
            n = x.shape[0]
        else:
            batch_var, batch_mean = torch.var_mean(x.reshape(self.seeds, -1, *x.shape[1:]), dim=1, correction=0)
            n = x.shape[0] // self.seeds
        batch_mean, batch_var = batch_mean.to(torch.float64), batch_var.to(torch.float64)
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()

    def per_sample(self, stat: torch.Tensor, rows: int) -> torch.Tensor:
        """A statistic (``mean``, ``std``, ...) lined up with a batch of ``rows`` samples: as it is for one seed,
        each seed's repeated over its block of rows for several."""
        return stat if self.seeds == 1 else stat.repeat_interleave(rows // self.seeds, dim=0)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.cpu(), "var": self.var.cpu(), "count": self.count}

    def state_dicts(self) -> list[dict[str, Any]]:
        """One lone run's ``state_dict`` per seed."""
        if self.seeds == 1:
            return [self.state_dict()]
        return [{"mean": self.mean[j].cpu(), "var": self.var[j].cpu(), "count": self.count} for j in range(self.seeds)]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        if self.seeds == 1:
            self.load_state_dict(states[0])
            return
        self.load_state_dict({
            "mean": torch.stack([s["mean"] for s in states]),
            "var": torch.stack([s["var"] for s in states]),
            "count": states[0]["count"],
        })  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].to(self.mean.device)
        self.var = state["var"].to(self.var.device)
        self.count = float(state["count"])
