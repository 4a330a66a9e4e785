"""Intrinsic motivation behind one protocol: none (plain PPO) and RND; SND variants plug in here.

Implementation details of RND and their sources (method.md §2.5, §4.3-4.5):
1. Input is the newest frame only (the seed's "channel 0"; here the last channel, see rlsweep.envs.base),
   scaled to [0, 1], minus a running per-pixel mean. Dividing by the std "causes huge instability" in the
   seed; OpenAI/CleanRL divide and clip to +-5 -> ``motivation.obs_norm``.
2. The running mean is filled by ``warmup_steps`` random-action steps per env before training (seed: 256;
   CleanRL: 50 x 128), then updated with every agent step's s_t.
3. r_int(s_t) = reward_scale * sum_k (T_k - P_k)^2 / 2 (seed: "sum of features / 2, not mean"); SND and
   OpenAI take the mean -> ``motivation.reward_reduction``. Computed on s_t, the state the action is taken in.
4. Optionally divided by the running std of r_int (seed variants b2/b3) -> ``normalise_int_reward``;
   OpenAI/CleanRL divide by the std of discounted intrinsic returns (not offered).
5. Then clipped to [0, 1] -> ``motivation.reward_clip``.
6. Predictor loss: squared error on a random element-wise mask keeping 25 % (seed: 32 / num_envs);
   CleanRL masks whole samples -> ``motivation.mask``. Separate Adam at 1e-4, no gradient clip; one
   predictor step per PPO minibatch (seed) or one pass over the rollout (paper) -> ``predictor_updates``.
7. The target network is frozen (no gradient ever reaches it).
"""

from __future__ import annotations

import torch

from rlsweep.config.schema import MotivationConfig
from rlsweep.motivation.base import Motivation
from rlsweep.motivation.none import NoMotivation
from rlsweep.motivation.normalizers import RunningMeanStd
from rlsweep.motivation.rnd import RND

__all__ = ["RND", "Motivation", "NoMotivation", "RunningMeanStd", "build_motivation"]


def build_motivation(cfg: MotivationConfig, obs_shape: tuple[int, int, int], device: torch.device) -> Motivation:
    if cfg.name == "none":
        return NoMotivation()
    if cfg.name == "rnd":
        return RND(cfg, obs_shape, device)
    raise ValueError(f"motivation.name={cfg.name!r} is not known; allowed: none, rnd")
