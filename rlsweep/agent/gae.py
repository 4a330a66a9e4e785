"""Generalised advantage estimation for one reward stream."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    episodic: bool = True,
    bootstrap_last: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns, both (T, N).

    ``rewards``, ``values``, ``dones`` are (T, N); ``dones[t]`` is 1 where the episode ended with transition
    t (so s_{t+1} is the first state of a new episode); ``next_value`` is V(s_T), shape (N,).
    delta_t = r_t + gamma * V_{t+1} * (1 - d_t) - V_t;  g_t = delta_t + gamma * lambda * (1 - d_t) * g_{t+1}.
    With ``episodic=False`` episode ends do not cut the stream (the intrinsic stream of OpenAI's RND).
    """
    steps = rewards.shape[0]
    not_done = 1.0 - dones.to(rewards.dtype) if episodic else torch.ones_like(rewards)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    first = steps - 1 if bootstrap_last else steps - 2  # seed's quirk: the last step keeps zero
    for t in range(first, -1, -1):
        v_next = next_value if t == steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * v_next * not_done[t] - values[t]
        last = delta + gamma * gae_lambda * not_done[t] * last
        advantages[t] = last
    returns = advantages + values
    if not bootstrap_last:
        returns[steps - 1] = 0.0
    return advantages, returns
