"""Count-based exploration with SimHash (Tang et al. 2017, "#Exploration: A Study of Count-Based Exploration for
Deep Reinforcement Learning", §2.1): the classic count baseline that RND and SND are measured against.

1. A state's code is the sign pattern of a fixed random projection of its newest frame: phi(s) = sgn(A g(s)), A a
   ``hash_bits`` x D matrix of standard normal entries drawn once per run, g(s) the newest frame in grey scaled to
   [0, 1] and average-pooled to ``hash_side`` x ``hash_side`` (D = hash_side^2). Nearby frames share a code; more
   bits tell more states apart.
2. Every agent step counts its states' codes, n(phi(s)) += 1, before their reward (``update_stats`` on s_t):
   r_int(s) = reward_scale / sqrt(n(phi(s))), the paper's beta / sqrt(n), at most reward_scale.
3. Optionally divided by the running std of r_int (``normalise_int_reward``), as for RND.
4. Nothing is trained: ``update`` does nothing, and the counts and the projection are the whole state a checkpoint
   keeps. With several seeds in one process each seed has its own projection (from its own generator) and counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlsweep.compute.perf import Stats
from rlsweep.config.schema import MotivationConfig, PerfConfig
from rlsweep.motivation.base import MotivationBatch, check_frame_channels, register_motivation
from rlsweep.motivation.normalizers import RunningMeanStd


class _Counts:
    """One seed's projection, its table of code counts and its reward statistics."""

    def __init__(self, bits: int, dims: int, device: torch.device, generator: torch.Generator | None) -> None:
        draw = torch.randn(bits, dims, generator=generator, dtype=torch.float32)
        self.projection = draw.to(device)
        self.counts: dict[bytes, int] = {}
        self.reward_rms = RunningMeanStd((), device)

    def codes(self, frames: torch.Tensor) -> list[bytes]:
        """phi(s) of each row of ``frames`` (B, D), packed to bytes (a dictionary key per state)."""
        bits = (frames @ self.projection.T > 0).cpu().numpy()
        return [row.tobytes() for row in np.packbits(bits, axis=1)]

    def count(self, frames: torch.Tensor) -> None:
        for code in self.codes(frames):
            self.counts[code] = self.counts.get(code, 0) + 1

    def seen(self, frames: torch.Tensor) -> torch.Tensor:
        """n(phi(s)) of each row, at least 1 (a state is counted before its reward)."""
        return torch.tensor([max(self.counts.get(c, 0), 1) for c in self.codes(frames)], dtype=torch.float32)

    def state_dict(self) -> dict[str, Any]:
        codes = list(self.counts)
        return {
            "projection": self.projection.cpu(),
            "codes": torch.tensor(np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1).copy())
            if codes
            else torch.zeros(0, 0, dtype=torch.uint8),
            "counts": torch.tensor([self.counts[c] for c in codes], dtype=torch.int64),
            "reward_rms": self.reward_rms.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.projection = state["projection"].to(self.projection.device)
        codes = state["codes"].numpy()
        self.counts = {row.tobytes(): int(n) for row, n in zip(codes, state["counts"].tolist(), strict=True)}
        self.reward_rms.load_state_dict(state["reward_rms"])


@register_motivation
class SimHash:
    name = "simhash"
    needs_warmup = False  # no input statistics to fill
    stats_from_next = False  # counts s_t just before r_int(s_t): a state's own visit is in its count

    def __init__(
        self,
        cfg: MotivationConfig,
        obs_shape: tuple[int, int, int],
        device: torch.device,
        frame_channels: int = 1,
        perf: PerfConfig | None = None,
        num_envs: int = 128,
    ) -> None:
        check_frame_channels(obs_shape, frame_channels)
        self.cfg = cfg
        self.device = device
        self.frame_channels = frame_channels
        self.side = min(cfg.hash_side, obs_shape[1], obs_shape[2])
        self.seeds = 1
        self._per_seed = [_Counts(cfg.hash_bits, self.side * self.side, device, None)]

    def _frames(self, obs: torch.Tensor) -> torch.Tensor:
        """g(s): the newest frame (the last ``frame_channels`` channels) in grey, in [0, 1], pooled, flattened."""
        newest = obs[:, -self.frame_channels :].float().mean(dim=1, keepdim=True) / 255.0
        return F.adaptive_avg_pool2d(newest, self.side).flatten(1)

    def _blocks(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """Each seed's rows of a seed-major batch (one block when one seed trains)."""
        return list(self._frames(obs).chunk(self.seeds))

    def update_stats(self, obs: torch.Tensor) -> None:
        for counts, frames in zip(self._per_seed, self._blocks(obs), strict=True):
            counts.count(frames)

    def reward(self, obs: torch.Tensor, step: int | None = None) -> torch.Tensor:
        rewards = []
        for counts, frames in zip(self._per_seed, self._blocks(obs), strict=True):
            r = (self.cfg.reward_scale / counts.seen(frames).sqrt()).to(self.device)
            if self.cfg.normalise_int_reward:
                counts.reward_rms.update(r)
                r = r / (counts.reward_rms.std.float() + 1e-8)
            rewards.append(r)
        return torch.cat(rewards)

    def begin_update(self, rollout_obs: torch.Tensor) -> None:
        return None

    def update(self, batch: MotivationBatch) -> Stats:
        return {}  # nothing trains

    def state_dict(self) -> dict[str, Any]:
        return self._per_seed[0].state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._per_seed[0].load_state_dict(state)

    def stack(self, others: list[SimHash], generators: list[torch.Generator]) -> None:
        """Train the other seeds' counts along with this one's: each seed draws its projection from its own
        generator (the first's too), as every stacked seed draws its random numbers (rlsweep.compute.stacked)."""
        self.seeds = 1 + len(others)
        dims = self.side * self.side
        self._per_seed = [_Counts(self.cfg.hash_bits, dims, self.device, g) for g in generators]

    def state_dicts(self) -> list[dict[str, Any]]:
        return [c.state_dict() for c in self._per_seed]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        for counts, state in zip(self._per_seed, states, strict=True):
            counts.load_state_dict(state)
