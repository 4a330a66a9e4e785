"""SimHash counts (rlsweep.motivation.simhash): a state's code is a fixed random projection's sign pattern of its
newest frame, its bonus reward_scale / sqrt(count), counted before the reward, per seed, kept by checkpoints."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from rlsweep.config.schema import MotivationConfig
from rlsweep.motivation import build_motivation
from rlsweep.motivation.simhash import SimHash

CPU = torch.device("cpu")
CFG = replace(MotivationConfig(), name="simhash", reward_scale=0.5, hash_bits=32, hash_side=8)
SHAPE = (2, 16, 16)  # two stacked grey frames


def _frames(*levels: int) -> torch.Tensor:
    """One observation per level: the older frame noise, the newest a block of that brightness on black."""
    obs = torch.randint(0, 256, (len(levels), *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    obs[:, -1] = 0
    for i, level in enumerate(levels):
        obs[i, -1, : 4 + 2 * i, :] = level  # a different picture per row
    return obs


def _simhash() -> SimHash:
    m = build_motivation(CFG, SHAPE, CPU)
    assert isinstance(m, SimHash)
    return m


def _step(m: SimHash, obs: torch.Tensor) -> torch.Tensor:
    m.update_stats(obs)  # the loop counts s_t just before r_int(s_t) (stats_from_next is False)
    return m.reward(obs)


def test_the_bonus_is_the_scale_over_the_root_of_the_states_count() -> None:
    torch.manual_seed(1)
    m = _simhash()
    assert not m.stats_from_next and not m.needs_warmup
    obs = _frames(255, 255, 255)
    codes = m._per_seed[0].codes(m._frames(obs))
    assert len(set(codes)) == 3  # three different pictures, three codes
    for visit in (1, 2, 3, 4):
        r = _step(m, obs)
        torch.testing.assert_close(r, torch.full((3,), 0.5 / math.sqrt(visit)))
    # The older frames do not enter the code: only the newest frame is hashed.
    other = obs.clone()
    other[:, 0] = 255 - other[:, 0]
    assert m._per_seed[0].codes(m._frames(other)) == codes


def test_the_counts_and_the_projection_survive_a_checkpoint() -> None:
    torch.manual_seed(2)
    m = _simhash()
    obs = _frames(200, 100)
    for _ in range(3):
        _step(m, obs)
    torch.manual_seed(99)  # another draw: only the loaded state may make it hash and count as before
    again = _simhash()
    again.load_state_dict(m.state_dict())
    torch.testing.assert_close(_step(again, obs), _step(m, obs))
    torch.testing.assert_close(_step(again, obs), torch.full((2,), 0.5 / math.sqrt(5)))


def test_stacked_seeds_count_apart_and_each_hashes_with_its_own_projection() -> None:
    m, other = _simhash(), _simhash()
    m.stack([other], [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    first, second = m._per_seed
    assert not torch.equal(first.projection, second.projection)
    obs = _frames(255, 255)  # seed-major: row 0 is seed 0's env, row 1 seed 1's
    both = torch.cat([obs[:1], obs[:1]])  # both seeds see the same state
    _step(m, both)
    r = _step(m, both)
    torch.testing.assert_close(r, torch.full((2,), 0.5 / math.sqrt(2)))  # two visits each, not four
    states = m.state_dicts()
    assert [int(s["counts"].sum()) for s in states] == [2, 2]
