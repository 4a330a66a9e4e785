"""Random Network Distillation as the seed implements it (details and sources: the package docstring)."""

from __future__ import annotations

from typing import Any

import torch

from rlsweep.config.schema import MotivationConfig
from rlsweep.models import build_distillation_nets
from rlsweep.motivation.normalizers import RunningMeanStd


class RND:
    name = "rnd"
    needs_warmup = True

    def __init__(self, cfg: MotivationConfig, obs_shape: tuple[int, int, int], device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        frame_shape = (1, obs_shape[1], obs_shape[2])
        target, predictor = build_distillation_nets(cfg.network, frame_shape, coupled_init=cfg.coupled_init)
        self.target = target.to(device)
        self.predictor = predictor.to(device)
        for p in self.target.parameters():
            p.requires_grad_(False)  # the RND target is a fixed random function
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=cfg.learning_rate)
        self.obs_rms = RunningMeanStd(frame_shape, device)
        self.reward_rms = RunningMeanStd((), device)

    def _frame(self, obs: torch.Tensor) -> torch.Tensor:
        """Newest frame in [0, 1], shape (B, 1, H, W)."""
        return obs[:, -1:].float() / 255.0

    def _normalise(self, frame: torch.Tensor) -> torch.Tensor:
        if self.cfg.obs_norm == "none":
            return frame
        centred = frame - self.obs_rms.mean.float()
        if self.cfg.obs_norm == "mean":
            return centred
        return (centred / (self.obs_rms.std.float() + 1e-8)).clamp(-5.0, 5.0)

    def update_stats(self, obs: torch.Tensor) -> None:
        self.obs_rms.update(self._frame(obs))

    def _error(self, obs: torch.Tensor) -> torch.Tensor:
        """Element-wise squared distillation error (B, features); gradient reaches the predictor only."""
        x = self._normalise(self._frame(obs))
        with torch.no_grad():
            target = self.target(x)
        return (target - self.predictor(x)) ** 2

    @torch.no_grad()
    def reward(self, obs: torch.Tensor) -> torch.Tensor:
        err = self._error(obs)
        r = err.sum(dim=1) / 2 if self.cfg.reward_reduction == "sum_half" else err.mean(dim=1)
        r = self.cfg.reward_scale * r
        if self.cfg.normalise_int_reward:
            self.reward_rms.update(r)
            r = r / (self.reward_rms.std.float() + 1e-8)
        if self.cfg.reward_clip > 0:
            r = r.clamp(0.0, self.cfg.reward_clip)
        return r

    def predictor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked mean squared error and the mask's kept fraction."""
        err = self._error(obs)
        shape = err.shape if self.cfg.mask == "element" else (err.shape[0], 1)
        mask = (torch.rand(shape, device=err.device) < self.cfg.update_proportion).float()
        mask = mask.expand_as(err)
        loss = (err * mask).sum() / mask.sum().clamp(min=1.0)
        return loss, mask.mean()

    def update(self, obs: torch.Tensor) -> dict[str, float]:
        loss, kept = self.predictor_loss(obs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss/motivation": loss.item(), "motivation/mask_kept": kept.item()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.state_dict(),
            "predictor": self.predictor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_rms": self.obs_rms.state_dict(),
            "reward_rms": self.reward_rms.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.reward_rms.load_state_dict(state["reward_rms"])
