"""Unit tests for rlsweep.agent: GAE per stream, the PPO loss terms, minibatch sampling and the update.

Expected numbers are worked out by hand from docs/method.md §4.1 (PPO loss with two critic heads)
and §4.2 (GAE: delta_t = r_t + gamma V_{t+1} (1 - d_t) - V_t, g_t = delta_t + gamma lambda (1 - d_t) g_{t+1},
R_t = g_t + V_t), or by a plain-Python loop written from the same formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tolerance import rounding
from torch.distributions import Categorical

from rlsweep.agent import PPOUpdater, compute_gae, explained_variance, minibatch_indices, ppo_loss
from rlsweep.agent.ppo import Batch
from rlsweep.compute.perf import to_floats
from rlsweep.config.schema import PPOConfig
from rlsweep.models import build_policy

LAM = 0.95


# T = 3 steps, N = 2 envs. Env 0's episode ends with transition t = 1; env 1 runs through.
REWARDS = [[1.0, 0.0], [0.0, 0.5], [2.0, 1.0]]
VALUES = [[0.5, 0.2], [0.4, 0.1], [0.3, 0.6]]
DONES = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
NEXT_VALUE = [0.7, -0.2]


def _t(x: list, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)  # float32, as the rollout storage holds them


def _gae_oracle(gamma: float, episodic: bool, bootstrap_last: bool) -> tuple[list[list[float]], list[list[float]]]:
    """GAE per env with plain floats, straight from method.md §4.2 (and the seed's last-step quirk)."""
    steps, envs = len(REWARDS), len(REWARDS[0])
    adv = [[0.0] * envs for _ in range(steps)]
    ret = [[0.0] * envs for _ in range(steps)]
    for n in range(envs):
        g = 0.0
        for t in reversed(range(steps)):
            if t == steps - 1 and not bootstrap_last:
                continue  # the seed's loop starts at T-2: the last step keeps A = R = 0
            not_done = 1.0 - DONES[t][n] if episodic else 1.0
            v_next = NEXT_VALUE[n] if t == steps - 1 else VALUES[t + 1][n]
            delta = REWARDS[t][n] + gamma * v_next * not_done - VALUES[t][n]
            g = delta + gamma * LAM * not_done * g
            adv[t][n] = g
            ret[t][n] = g + VALUES[t][n]
    return adv, ret


# One float32 GAE rounds at most 31 times on its longest chain: the inputs stored in float32 (r, V, V_next, gamma,
# gamma lambda: 5 per step) and 5 operations per step (delta: gamma V, + r, - V; the trace: x g, + delta; x not_done
# is exact) over 3 steps (an earlier step carries the later ones' error times gamma lambda < 1), plus R = A + V. The
# numbers involved stay below 4 (|R| <= 3.5). _close also checks the difference of two GAEs: twice that, 64.
# A real mistake (the wrong gamma, a done that does not cut) moves a value by 5e-3 or more, 150 times this bound.
GAE_FLOAT32 = rounding(torch.float32, depth=64, scale=4.0)


def _close(actual: torch.Tensor, expected: object) -> None:
    np.testing.assert_allclose(actual.double().numpy(), np.asarray(expected, dtype=np.float64), rtol=0,
                               atol=GAE_FLOAT32)  # fmt: skip


def _gae(gamma: float, episodic: bool, bootstrap_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    return compute_gae(
        _t(REWARDS), _t(VALUES), _t(DONES), _t(NEXT_VALUE), gamma, LAM, episodic=episodic, bootstrap_last=bootstrap_last
    )


# ---- GAE ---------------------------------------------------------------------------------------------------


def test_gae_extrinsic_episodic_by_hand() -> None:
    adv, ret = _gae(0.998, episodic=True)
    assert adv.shape == ret.shape == (3, 2)
    # Env 0, gamma 0.998: the done at t = 1 cuts both the bootstrap and the trace.
    d2 = 2.0 + 0.998 * 0.7 - 0.3  # = 2.3986 (bootstrap from next_value)
    d1 = 0.0 + 0.998 * 0.3 * 0.0 - 0.4  # = -0.4 (episode ended: no V(s_2))
    d0 = 1.0 + 0.998 * 0.4 - 0.5  # = 0.8992
    a2, a1 = d2, d1  # the trace from t = 2 does not cross the done
    a0 = d0 + 0.998 * 0.95 * a1  # = 0.8992 - 0.37924 = 0.51996
    _close(adv[:, 0], [0.51996, -0.4, 2.3986])
    _close(adv[:, 0], [a0, a1, a2])
    _close(ret[:, 0], [0.51996 + 0.5, -0.4 + 0.4, 2.3986 + 0.3])
    exp_adv, exp_ret = _gae_oracle(0.998, episodic=True, bootstrap_last=True)
    _close(adv, exp_adv)
    _close(ret, exp_ret)


def test_gae_intrinsic_episodic_by_hand() -> None:
    adv, ret = _gae(0.99, episodic=True)
    # Env 1, gamma 0.99, no done; every number expanded by hand.
    # d2 = 1 + 0.99 * (-0.2) - 0.6 = 0.202;  d1 = 0.5 + 0.99 * 0.6 - 0.1 = 0.994;  d0 = 0 + 0.99 * 0.1 - 0.2 = -0.101
    # A2 = 0.202;  A1 = 0.994 + 0.9405 * 0.202 = 1.183981;  A0 = -0.101 + 0.9405 * 1.183981 = 1.0125341305
    _close(adv[:, 1], [1.0125341305, 1.183981, 0.202])
    _close(ret[:, 1], [1.2125341305, 1.283981, 0.802])
    exp_adv, exp_ret = _gae_oracle(0.99, episodic=True, bootstrap_last=True)
    _close(adv, exp_adv)
    _close(ret, exp_ret)


def test_gae_intrinsic_non_episodic_ignores_the_done() -> None:
    adv, ret = _gae(0.99, episodic=False)
    # Env 0, gamma 0.99, the done at t = 1 does not cut the stream:
    # d2 = 2 + 0.99 * 0.7 - 0.3 = 2.393;  d1 = 0 + 0.99 * 0.3 - 0.4 = -0.103;  d0 = 1 + 0.99 * 0.4 - 0.5 = 0.896
    # A1 = -0.103 + 0.9405 * 2.393 = 2.1476165;  A0 = 0.896 + 0.9405 * 2.1476165 = 2.91583331825
    _close(adv[:, 0], [2.91583331825, 2.1476165, 2.393])
    # Env 1 has no done, so it is the same as in the episodic case.
    _close(adv[:, 1], [1.0125341305, 1.183981, 0.202])
    exp_adv, exp_ret = _gae_oracle(0.99, episodic=False, bootstrap_last=True)
    _close(adv, exp_adv)
    _close(ret, exp_ret)
    # ...and differs from the episodic stream exactly where the done is crossed.
    adv_ep, _ = _gae(0.99, episodic=True)
    assert adv[2, 0] == adv_ep[2, 0]
    assert abs(adv[1, 0] - adv_ep[1, 0]) > 1.0


def test_gae_next_value_bootstraps_only_the_last_step_of_a_running_episode() -> None:
    rewards, values, dones = _t(REWARDS), _t(VALUES), _t(DONES)
    base_adv, _ = compute_gae(rewards, values, dones, _t(NEXT_VALUE), 0.99, LAM)
    bumped_adv, _ = compute_gae(rewards, values, dones, _t([NEXT_VALUE[0] + 1.0, NEXT_VALUE[1]]), 0.99, LAM)
    diff = (bumped_adv - base_adv)[:, 0].tolist()
    # +1 on V(s_T) of env 0 adds gamma at t = 2 and nothing earlier: the done at t = 1 cuts the trace.
    assert diff == pytest.approx([0.0, 0.0, 0.99], abs=GAE_FLOAT32)  # the difference of two float32 GAEs
    # Env 1 runs through: +1 on its V(s_T) reaches back as gamma * (gamma lambda)^(2 - t).
    bumped1, _ = compute_gae(rewards, values, dones, _t([NEXT_VALUE[0], NEXT_VALUE[1] + 1.0]), 0.99, LAM)
    _close(bumped1[:, 1] - base_adv[:, 1], [0.99 * 0.9405**2, 0.99 * 0.9405, 0.99])
    assert torch.equal(bumped_adv[:, 1], base_adv[:, 1])
    # A done on the last step ignores next_value altogether.
    last_done = dones.clone()
    last_done[2, 0] = 1.0
    a, _ = compute_gae(rewards, values, last_done, _t(NEXT_VALUE), 0.99, LAM)
    b, _ = compute_gae(rewards, values, last_done, _t([100.0, NEXT_VALUE[1]]), 0.99, LAM)
    assert torch.equal(a[:, 0], b[:, 0])
    # r - V with 0.3 stored in float32: two roundings of numbers up to 2 (the bootstrap term is an exact zero)
    assert a[2, 0].item() == pytest.approx(2.0 - 0.3, abs=rounding(torch.float32, depth=2, scale=2.0))


@pytest.mark.parametrize(("gamma", "episodic"), [(0.998, True), (0.99, True), (0.99, False)])
def test_gae_without_bootstrap_last_is_the_seeds_quirk(gamma: float, episodic: bool) -> None:
    adv, ret = _gae(gamma, episodic=episodic, bootstrap_last=False)
    assert adv[2].tolist() == [0.0, 0.0]
    assert ret[2].tolist() == [0.0, 0.0]
    exp_adv, exp_ret = _gae_oracle(gamma, episodic=episodic, bootstrap_last=False)
    _close(adv, exp_adv)
    _close(ret, exp_ret)
    # The trace starts at T-2 from zero, but t = 1 still bootstraps from V(s_2); next_value is never read.
    if gamma == 0.99:
        # Env 1: A1 = d1 = 0.5 + 0.99 * 0.6 - 0.1 = 0.994;  A0 = -0.101 + 0.9405 * 0.994 = 0.833857
        _close(adv[:2, 1], [0.833857, 0.994])
        _close(ret[:2, 1], [0.833857 + 0.2, 0.994 + 0.1])
    other, _ = compute_gae(
        _t(REWARDS), _t(VALUES), _t(DONES), _t([50.0, -50.0]), gamma, LAM, episodic=episodic, bootstrap_last=False
    )
    assert torch.equal(other, adv)


def test_gae_keeps_float64_precision() -> None:
    f64 = torch.float64
    adv, _ = compute_gae(
        _t(REWARDS, f64), _t(VALUES, f64), _t(DONES, f64), _t(NEXT_VALUE, f64), 0.99, LAM, episodic=True
    )
    assert adv.dtype == f64
    exp_adv, _ = _gae_oracle(0.99, episodic=True, bootstrap_last=True)
    # the same float64 inputs on both sides; each side's 5 operations per step over 3 steps and R = A + V: 16 roundings
    gae_float64 = rounding(torch.float64, depth=2 * 16, scale=4.0)
    np.testing.assert_allclose(adv.numpy(), np.asarray(exp_adv), rtol=0, atol=gae_float64)


# ---- PPO loss ----------------------------------------------------------------------------------------------


def _loss_inputs(seed: int = 0, batch: int = 6, actions: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, actions, generator=g, dtype=torch.float64)
    acts = torch.randint(0, actions, (batch,), generator=g)
    return {
        "logits": logits,
        "value_ext": torch.randn(batch, generator=g, dtype=torch.float64),
        "value_int": torch.randn(batch, generator=g, dtype=torch.float64),
        "actions": acts,
        "advantages": torch.randn(batch, generator=g, dtype=torch.float64),
        "returns_ext": torch.randn(batch, generator=g, dtype=torch.float64),
        "returns_int": torch.randn(batch, generator=g, dtype=torch.float64),
    }


def test_ppo_loss_at_ratio_one() -> None:
    x = _loss_inputs()
    old = Categorical(logits=x["logits"]).log_prob(x["actions"]).detach()
    t = ppo_loss(**x, old_logprobs=old, clip_coef=0.1, ent_coef=0.01, vf_coef=0.5)

    # Independent numpy: softmax entropy and the MSE of each head.
    z = x["logits"].numpy()
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    entropy = float(np.mean(-(p * np.log(p)).sum(axis=1)))
    adv = x["advantages"].numpy()
    mse_ext = float(np.mean((x["returns_ext"].numpy() - x["value_ext"].numpy()) ** 2))
    mse_int = float(np.mean((x["returns_int"].numpy() - x["value_int"].numpy()) ** 2))

    # Both sides in float64, by different formulas: the entropy rounds ~18 times (log-softmax over 3 actions, p log p,
    # the sums, the mean of 6), an MSE 8 times (difference, square, 5 additions, division), the total 4 more; twice
    # (torch's and numpy's), so 64. The squared errors reach 11: scale 16. A real mistake is 1e-2 or more.
    exact = rounding(torch.float64, depth=64, scale=16.0)
    assert t.clipfrac.item() == 0.0
    assert t.approx_kl.item() == pytest.approx(0.0, abs=exact)
    assert t.policy.item() == pytest.approx(-adv.mean(), abs=exact)
    assert t.value_ext.item() == pytest.approx(mse_ext, abs=exact)
    assert t.value_int.item() == pytest.approx(mse_int, abs=exact)
    assert t.entropy.item() == pytest.approx(entropy, abs=exact)
    assert t.total.item() == pytest.approx(-adv.mean() + 0.5 * (mse_ext + mse_int) - 0.01 * entropy, abs=exact)
    assert t.total.requires_grad is False  # nothing in x requires grad; the terms are plain functions of inputs


def test_ppo_loss_uses_the_clipped_term_outside_the_clip_range() -> None:
    logits = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)  # pi(a) = 0.5 everywhere
    actions = torch.tensor([0, 1, 0, 1])
    ratios = torch.tensor([1.5, 1.5, 0.5, 0.5], dtype=torch.float64)
    old = math.log(0.5) - ratios.log()  # log pi_new - log pi_old = log ratio
    adv = torch.tensor([2.0, -1.0, 1.0, -2.0], dtype=torch.float64)
    zeros = torch.zeros(4, dtype=torch.float64)
    t = ppo_loss(logits, zeros, zeros, actions, old, adv, zeros, zeros, clip_coef=0.1, ent_coef=0.0, vf_coef=0.5)
    # Per sample, min(r A, clip(r, 0.9, 1.1) A):
    #   r=1.5, A=+2: min(3.0, 2.2) = 2.2 (clipped)    r=1.5, A=-1: min(-1.5, -1.1) = -1.5 (unclipped)
    #   r=0.5, A=+1: min(0.5, 0.9) = 0.5 (unclipped)  r=0.5, A=-2: min(-1.0, -1.8) = -1.8 (clipped)
    # policy = -(2.2 - 1.5 + 0.5 - 1.8) / 4 = 0.15
    # In float64: log pi (log-softmax of zeros), log ratio, exp, clamp x A, the mean of 4: ~16 roundings of numbers
    # below 4 (|r A| <= 3). A wrong choice between the clipped and unclipped term moves the loss by 0.1 or more.
    exact = rounding(torch.float64, depth=16, scale=4.0)
    assert t.policy.item() == pytest.approx(0.15, abs=exact)
    assert t.clipfrac.item() == 1.0
    kl = (2 * (0.5 - math.log(1.5)) + 2 * (-0.5 - math.log(0.5))) / 4  # mean((r - 1) - log r)
    assert t.approx_kl.item() == pytest.approx(kl, abs=exact)
    assert t.total.item() == pytest.approx(0.15, abs=exact)  # value heads exact, no entropy weight
    # The clipped samples (0 and 3) get no policy gradient; the unclipped ones do.
    t.policy.backward()
    assert logits.grad is not None
    grad_per_sample = logits.grad.abs().sum(dim=1)
    assert grad_per_sample[0].item() == 0.0 and grad_per_sample[3].item() == 0.0
    assert grad_per_sample[1].item() > 0.0 and grad_per_sample[2].item() > 0.0


def test_ppo_loss_ratio_inside_clip_range_is_not_clipped() -> None:
    logits = torch.zeros(2, 2, dtype=torch.float64)
    actions = torch.tensor([0, 1])
    old = math.log(0.5) - torch.log(torch.tensor([1.05, 0.95], dtype=torch.float64))
    adv = torch.tensor([1.0, 1.0], dtype=torch.float64)
    zeros = torch.zeros(2, dtype=torch.float64)
    t = ppo_loss(logits, zeros, zeros, actions, old, adv, zeros, zeros, clip_coef=0.1, ent_coef=0.0, vf_coef=0.5)
    assert t.clipfrac.item() == 0.0
    assert t.policy.item() == pytest.approx(-(1.05 + 0.95) / 2, abs=rounding(torch.float64, depth=16, scale=4.0))


# ---- minibatches and explained variance --------------------------------------------------------------------


def test_minibatch_indices_with_replacement() -> None:
    g = torch.Generator().manual_seed(0)
    mbs = list(minibatch_indices(64, 16, "replacement", torch.device("cpu"), generator=g))
    assert len(mbs) == 4
    for idx in mbs:
        assert idx.shape == (16,)
        assert idx.dtype == torch.int64
        assert idx.min().item() >= 0 and idx.max().item() < 64
    # With replacement over 1,024 draws from 64 indices some repeat (a permutation would never repeat).
    big = torch.cat(list(minibatch_indices(1024, 512, "replacement", torch.device("cpu"), generator=g)))
    assert big.numel() == 1024
    assert big.unique().numel() < 1024


def test_minibatch_indices_permutation_covers_every_index_once() -> None:
    g = torch.Generator().manual_seed(0)
    for _epoch in range(3):
        mbs = list(minibatch_indices(64, 16, "permutation", torch.device("cpu"), generator=g))
        assert len(mbs) == 4
        assert all(idx.shape == (16,) for idx in mbs)
        assert torch.equal(torch.cat(mbs).sort().values, torch.arange(64))


def test_explained_variance() -> None:
    returns = torch.tensor([1.0, -2.0, 0.5, 3.0])
    # float32: each variance of 4 numbers rounds ~16 times (mean, differences, squares, sum, division), plus R - V,
    # the ratio and 1 - ratio: 36, relative to the ratio (<= 1 here). A wrong formula is off by 0.25 or more.
    ev_float32 = rounding(torch.float32, depth=36)
    assert explained_variance(returns.clone(), returns) == pytest.approx(1.0, abs=ev_float32)
    # A constant prediction explains nothing: 1 - var(R - c) / var(R) = 0.
    assert explained_variance(torch.full_like(returns, 0.7), returns) == pytest.approx(0.0, abs=ev_float32)
    # Half-way predictions: var(R - R/2) / var(R) = 1/4, so 0.75.
    assert explained_variance(returns / 2, returns) == pytest.approx(0.75, abs=ev_float32)
    assert math.isnan(explained_variance(returns, torch.ones(4)))


# ---- the update --------------------------------------------------------------------------------------------


def test_ppo_updater_changes_the_policy_and_reports_metrics() -> None:
    torch.manual_seed(0)
    policy = build_policy("A", (4, 16, 16), 3, 0.1)
    size = 32
    obs = torch.randint(0, 256, (size, 4, 16, 16), dtype=torch.uint8)
    actions = torch.randint(0, 3, (size,))
    with torch.no_grad():
        out = policy(obs.float() / 255.0)
        logprobs = Categorical(logits=out.logits).log_prob(actions)
    batch = Batch(
        obs=obs,
        actions=actions,
        logprobs=logprobs,
        advantages=torch.randn(size),
        returns_ext=torch.randn(size),
        returns_int=torch.randn(size),
    )
    cfg = PPOConfig(num_envs=4, num_steps=8, update_epochs=2, minibatch_size=8, learning_rate=1e-3)
    before = [p.detach().clone() for p in policy.parameters()]
    seen: list[torch.Tensor] = []

    def after_minibatch(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(idx)
        return {"loss/motivation": torch.tensor(float(len(seen)))}

    stats = to_floats(PPOUpdater(policy, cfg).update(batch, after_minibatch=after_minibatch))

    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, policy.parameters(), strict=True)]
    assert any(changed)
    for key in ("loss/total", "loss/policy", "loss/value_ext", "loss/value_int", "ppo/approx_kl", "ppo/clipfrac"):
        assert key in stats and math.isfinite(stats[key]), key
    assert 0.0 <= stats["ppo/clipfrac"] <= 1.0
    assert stats["ppo/approx_kl"] >= 0.0  # the k3 estimator is non-negative
    # 2 epochs x (32 / 8) minibatches, each of 8 indices; the callback's metrics are averaged: mean(1..8).
    assert len(seen) == 8
    assert all(idx.shape == (8,) for idx in seen)
    # a float32 mean of 8 numbers: 7 additions and a division (exact for these small integers)
    assert stats["loss/motivation"] == pytest.approx(4.5, rel=rounding(torch.float32, depth=8))
