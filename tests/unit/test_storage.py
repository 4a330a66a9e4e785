"""Unit tests for rlsweep.storage: what the agent and the envs write per step is what the update reads."""

from __future__ import annotations

import numpy as np
import torch

from rlsweep.storage import RolloutStorage


def test_rollout_holds_agent_and_env_values_after_finish() -> None:
    t, n, shape = 3, 2, (1, 4, 4)
    storage = RolloutStorage(t, n, shape, torch.device("cpu"))
    rng = np.random.default_rng(0)
    rewards = rng.random((t, n)).astype(np.float32)
    dones = rng.random((t, n)) < 0.5
    for step in range(t):
        obs = torch.full((n, *shape), step + 1, dtype=torch.uint8)
        storage.insert(step, obs, torch.tensor([step, 2 * step]), torch.zeros(n), torch.ones(n), torch.ones(n),
                       torch.full((n,), 0.5))  # fmt: skip
        storage.insert_env(step, rewards[step], dones[step])
    storage.finish(torch.full((n, *shape), 9, dtype=torch.uint8))
    assert storage.obs.dtype == torch.uint8 and storage.obs[:, 0, 0, 0, 0].tolist() == [1, 2, 3]
    assert storage.actions[:, 1].tolist() == [0, 2, 4]
    assert torch.equal(storage.rewards_ext, torch.from_numpy(rewards))
    assert torch.equal(storage.dones, torch.from_numpy(dones.astype(np.float32)))
    assert int(storage.last_obs.max()) == 9
    # s_{t+1} of the last step is s_T; of the others, the next stored step
    assert storage.next_obs(torch.tensor([0, 5]))[:, 0, 0, 0].tolist() == [2, 9]
