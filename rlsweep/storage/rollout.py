"""One rollout of T steps from N envs, kept on the run's device.

Observations are stored as uint8 (the seed's 128 x 128 x 4x96x96 rollout is 604 MB as uint8, 2.4 GB as
float32) and scaled to [0, 1] only when a minibatch is fed to a network. What the envs return besides frames
(extrinsic reward, done) is written to host buffers and moved to the device once per rollout by
:meth:`RolloutStorage.finish`, not in two tiny transfers per step.
"""

from __future__ import annotations

import numpy as np
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
        if device.type == "cpu":  # the device is the host: write in place
            self._host_rewards_ext, self._host_dones = self.rewards_ext, self.dones
        else:  # pinned, so finish() can copy asynchronously
            self._host_rewards_ext = torch.zeros((t, n), pin_memory=device.type == "cuda")
            self._host_dones = torch.zeros((t, n), pin_memory=device.type == "cuda")
        self._copied: torch.cuda.Event | None = None  # marks the end of finish()'s asynchronous copies

    def insert(
        self,
        step: int,
        obs: torch.Tensor,
        actions: torch.Tensor,
        logprobs: torch.Tensor,
        values_ext: torch.Tensor,
        values_int: torch.Tensor,
        rewards_int: torch.Tensor,
        envs: slice = slice(None),
    ) -> None:
        """What the agent computed for step ``step`` of the envs ``envs`` (device tensors)."""
        self.obs[step, envs] = obs
        self.actions[step, envs] = actions
        self.logprobs[step, envs] = logprobs
        self.values_ext[step, envs] = values_ext
        self.values_int[step, envs] = values_int
        self.rewards_int[step, envs] = rewards_int

    def insert_env(self, step: int, rewards_ext: np.ndarray, dones: np.ndarray, envs: slice = slice(None)) -> None:
        """What the envs ``envs`` returned for step ``step`` (host arrays; on the device after :meth:`finish`)."""
        if self._copied is not None:  # the last rollout's copies must be done before its buffers are reused
            self._copied.synchronize()
            self._copied = None
        self._host_rewards_ext[step, envs] = torch.from_numpy(np.asarray(rewards_ext))
        self._host_dones[step, envs] = torch.from_numpy(np.asarray(dones))

    def finish(self, last_obs: torch.Tensor) -> None:
        """Close the rollout: store s_T and move the envs' rewards and dones to the device, one copy each."""
        self.set_last_obs(last_obs)
        if self._host_rewards_ext is not self.rewards_ext:
            self.rewards_ext.copy_(self._host_rewards_ext, non_blocking=True)
            self.dones.copy_(self._host_dones, non_blocking=True)
            if self.rewards_ext.device.type == "cuda":
                self._copied = torch.cuda.Event()
                self._copied.record()

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
