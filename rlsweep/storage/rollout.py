"""One rollout of T steps from N envs, kept on the run's device.

Observations are stored as uint8 (the seed's 128 x 128 x 4x96x96 rollout is 604 MB as uint8, 2.4 GB as
float32) and scaled to [0, 1] only when a minibatch is fed to a network.
"""

from __future__ import annotations

import torch


class RolloutStorage:
    def __init__(self, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], device: torch.device) -> None:
        t, n = num_steps, num_envs
        self.num_steps, self.num_envs = t, n
        self.obs = torch.zeros((t, n, *obs_shape), dtype=torch.uint8, device=device)
        self.actions = torch.zeros((t, n), dtype=torch.long, device=device)
        self.logprobs = torch.zeros((t, n), device=device)
        self.values_ext = torch.zeros((t, n), device=device)
        self.values_int = torch.zeros((t, n), device=device)
        self.rewards_ext = torch.zeros((t, n), device=device)
        self.rewards_int = torch.zeros((t, n), device=device)
        self.dones = torch.zeros((t, n), device=device)
        self.last_obs = torch.zeros((n, *obs_shape), dtype=torch.uint8, device=device)  # s_T, after the last step

    def insert(
        self,
        step: int,
        obs: torch.Tensor,
        actions: torch.Tensor,
        logprobs: torch.Tensor,
        values_ext: torch.Tensor,
        values_int: torch.Tensor,
        rewards_ext: torch.Tensor,
        rewards_int: torch.Tensor,
        dones: torch.Tensor,
    ) -> None:
        self.obs[step] = obs
        self.actions[step] = actions
        self.logprobs[step] = logprobs
        self.values_ext[step] = values_ext
        self.values_int[step] = values_int
        self.rewards_ext[step] = rewards_ext
        self.rewards_int[step] = rewards_int
        self.dones[step] = dones

    def flat_obs(self) -> torch.Tensor:
        return self.obs.reshape(-1, *self.obs.shape[2:])

    def set_last_obs(self, obs: torch.Tensor) -> None:
        """Store s_T, the observation after the rollout's last step (the successor of the last stored states)."""
        self.last_obs.copy_(obs)

    def next_obs(self, idx: torch.Tensor) -> torch.Tensor:
        """s_{t+1} for rows ``idx`` of :meth:`flat_obs` (row = t * N + n), gathered without copying the rollout.

        With same-step autoreset, the successor of a done step is the next episode's first observation.
        """
        flat = self.flat_obs()
        nxt = idx + self.num_envs
        inside = nxt < flat.shape[0]
        out = flat[nxt.clamp(max=flat.shape[0] - 1)]
        if not bool(inside.all()):
            out[~inside] = self.last_obs[idx[~inside] % self.num_envs]
        return out
