"""Unit tests for SND (method.md §4.6-4.8): the three target losses at hand-checked points, where gradients go,
augmentation statistics, pair-sampling proportions, the motivation batch's s_{t+1}, and a short learning check
that a trained SND-V target spreads distinct states apart more than a frozen random target does."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import pytest
import torch
from tolerance import reordered_depth, rounding, sampling

from rlsweep.config.schema import MotivationConfig
from rlsweep.motivation import SNDSTD, SNDV, SNDVIC, MotivationBatch, build_motivation
from rlsweep.motivation.ssl import (
    STDIMHeads,
    augment,
    contrastive_mse_loss,
    mask_tiles,
    sample_pairs,
    stdim_loss,
    uniform_noise,
    vicreg_loss,
)
from rlsweep.storage import RolloutStorage

CPU = torch.device("cpu")
OBS_SHAPE = (4, 32, 32)
SND_V = MotivationConfig(name="snd_v", network="c", reward_reduction="mean", reward_scale=0.5, obs_norm="none")
SND_VIC = replace(SND_V, name="snd_vic", network="vic", target_loss="vicreg", reward_scale=0.25)
SND_STD = replace(SND_V, name="snd_std", network="std", target_loss="stdim", reward_scale=1.0)


def _obs(batch: int, seed: int, shape: tuple[int, int, int] = OBS_SHAPE) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, generator=g)


# ---- losses at hand-checked points ---------------------------------------------------------------------------


def test_contrastive_mse_identical_features() -> None:
    z = torch.full((4, 8), 2.0)
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    loss, sim, magnitude = contrastive_mse_loss(z, z.clone(), labels, threshold=200.0)
    # d = 0 for every pair: close pairs cost 0, far pairs (1 - 0)^2 = 1 -> mean 0.5; energy 4 + 4 = 8 < 200.
    # float32 means of at most 32 small numbers, a sum and a hinge: 40 roundings at most, relative (these sums of
    # small integers happen to be exact in float32). A wrong term (energy not added, a mean over the wrong axis) is
    # off by 0.5 or more.
    exact = rounding(torch.float32, depth=40)
    assert sim.item() == pytest.approx(0.5, rel=exact)
    assert magnitude.item() == pytest.approx(8.0, rel=exact)
    assert loss.item() == pytest.approx(0.5, rel=exact)
    # The hinge: energy 8 against a threshold of 5 adds 3.
    assert contrastive_mse_loss(z, z, labels, threshold=5.0)[0].item() == pytest.approx(3.5, rel=exact)


def test_contrastive_mse_distance_is_mean_squared() -> None:
    za = torch.zeros(2, 4)
    zb = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])  # d = 1 and 1
    loss, sim, _ = contrastive_mse_loss(za, zb, torch.tensor([1.0, 0.0]), threshold=200.0)
    exact = rounding(torch.float32, depth=16)  # float32 means of 4 and 2 small numbers, squares, a sum: 16 at most
    assert sim.item() == pytest.approx((0.0 + 1.0) / 2, rel=exact)
    assert loss.item() == pytest.approx(0.5, rel=exact)


def test_vicreg_identical_features() -> None:
    # Two features: x and -x over 4 samples, var(x) (unbiased) = 4/3 * mean(x^2) = 4/3 -> std > 1: no var loss.
    x = torch.tensor([1.0, -1.0, 1.0, -1.0])
    z = torch.stack([x, -x], dim=1)
    total, parts = vicreg_loss(z, z.clone(), 1.0, 1.0, 1.0 / 25)
    assert parts["inv"].item() == 0.0
    assert parts["var"].item() == 0.0
    cov = -4.0 / 3.0  # Cov(x, -x) with n - 1 = 3
    expected_cov = 2 * (2 * cov**2 / 2)  # both views: two off-diagonal entries / dim 2
    # float32 against float64: the covariance's / 3, its square, the sums over entries and views, x 1/25 and the
    # total's additions: 8 roundings at most, relative. Cov(x, x) in place of Cov(x, -x) would not change the square,
    # but a wrong n - 1 or a missing view is off by 25 % or more.
    exact = rounding(torch.float32, depth=8)
    assert parts["cov"].item() == pytest.approx(expected_cov, rel=exact)
    assert total.item() == pytest.approx(expected_cov / 25, rel=exact)
    # Collapsed features: variance hinge = 1 - sqrt(1e-4) per feature and view.
    zero = torch.zeros(4, 2)
    # float32: 1e-4 stored, its square root, 1 - it, the mean of 2 and the sum of 2 views: 6 roundings, so 8
    assert vicreg_loss(zero, zero)[1]["var"].item() == pytest.approx(2 * (1 - math.sqrt(1e-4)), rel=exact)


def test_stdim_loss_with_zero_scorers_is_log_n() -> None:
    heads = STDIMHeads(8, 4)
    for layer in (heads.global_local, heads.local_local):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    n = 5
    g = torch.randn(n, 8)
    local = torch.randn(n, 4, 2, 2)
    infonce, norm = stdim_loss(g, local, local.clone(), heads)
    # All logits 0: each InfoNCE term is log n, two terms; the logits' norm is 0.
    # float32: log n rounds once, the mean over 5 x 2 x 2 = 20 terms up to 20 times, the two terms' sum once: 24.
    # log(n - 1) (a positive counted as a negative) would be 14 % off.
    assert infonce.item() == pytest.approx(2 * math.log(n), rel=rounding(torch.float32, depth=24))
    assert norm.item() == 0.0


def test_stdim_loss_prefers_the_diagonal() -> None:
    torch.manual_seed(0)
    heads = STDIMHeads(4, 4)
    with torch.no_grad():
        heads.global_local.weight.copy_(torch.eye(4) * 10)
        heads.global_local.bias.zero_()
        heads.local_local.weight.copy_(torch.eye(4) * 10)
        heads.local_local.bias.zero_()
    codes = torch.eye(4)  # sample i's code is e_i everywhere
    local = codes[:, :, None, None].expand(4, 4, 3, 3).contiguous()
    good, _ = stdim_loss(codes, local, local, heads)
    shuffled, _ = stdim_loss(codes[[1, 2, 3, 0]], local, local[[1, 2, 3, 0]], heads)
    assert good.item() < 0.01 < shuffled.item()


# ---- gradients -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [SND_V, SND_VIC, SND_STD], ids=["snd_v", "snd_vic", "snd_std"])
def test_predictor_never_trains_target_and_target_loss_never_reaches_predictor(cfg: MotivationConfig) -> None:
    torch.manual_seed(0)
    m = build_motivation(cfg, OBS_SHAPE, CPU)
    assert type(m) is {"snd_v": SNDV, "snd_vic": SNDVIC, "snd_std": SNDSTD}[cfg.name]
    obs = _obs(16, 1)
    batch = MotivationBatch.from_obs(obs, _obs(16, 2))
    # The predictor's loss leaves the target without gradient.
    loss, _ = m.predictor_loss(obs)
    loss.backward()
    assert all(p.grad is None for p in m.target.parameters())
    assert any(p.grad is not None for p in m.predictor.parameters())
    m.predictor.zero_grad(set_to_none=True)
    # The target's loss reaches the target (and ST-DIM's scorers) and never the predictor.
    target_loss, _ = m.target_loss(batch)
    target_loss.backward()
    assert all(p.grad is None for p in m.predictor.parameters())
    assert all(p.grad is not None for p in m.target.parameters())
    assert all(p.grad is not None for p in m.heads.parameters())
    # A full update moves both nets; the reward is eta * mean squared error, clipped to [0, 1].
    m.target.zero_grad(set_to_none=True)
    before = [p.detach().clone() for p in m.target.parameters()]
    stats = m.update(batch)
    assert {"loss/motivation", "loss/motivation_target"} <= set(stats)
    assert any(not torch.equal(b, p) for b, p in zip(before, m.target.parameters(), strict=True))
    with torch.no_grad():
        x = obs[:, -1:].float() / 255.0
        expected = (cfg.reward_scale * ((m.target(x) - m.predictor(x)) ** 2).mean(dim=1)).clamp(0, 1)
    # both networks' sums reordered (the product's layout and batch), twice for the square, the mean of 512 features
    # and the scale: relative, as T - P is about as large as T. A wrong frame or scale is off by 10 % or more.
    reward_rtol = rounding(torch.float32, depth=2 * reordered_depth(m.target, m.predictor) + 512 + 1)
    torch.testing.assert_close(m.reward(obs), expected, rtol=reward_rtol, atol=0)


def test_snd_state_dict_round_trip_includes_target_optimizer() -> None:
    torch.manual_seed(0)
    src = build_motivation(SND_STD, OBS_SHAPE, CPU)
    src.update(MotivationBatch.from_obs(_obs(8, 3), _obs(8, 4)))
    torch.manual_seed(1)
    dst = build_motivation(SND_STD, OBS_SHAPE, CPU)
    buffer = io.BytesIO()
    torch.save(src.state_dict(), buffer)
    buffer.seek(0)
    dst.load_state_dict(torch.load(buffer))
    assert "target_optimizer" in src.state_dict() and "heads" in src.state_dict()
    obs = _obs(4, 5)
    torch.testing.assert_close(dst.reward(obs), src.reward(obs), rtol=0, atol=0)


def test_rgb_frames_use_the_last_three_channels() -> None:
    torch.manual_seed(0)
    m = build_motivation(SND_V, (6, 32, 32), CPU, frame_channels=3)
    assert m.target.conv_layers()[0].in_channels == 3
    obs = _obs(4, 6, (6, 32, 32))
    base = m.reward(obs)
    older = obs.clone()
    older[:, :3] = 0  # the older RGB frame does not matter
    torch.testing.assert_close(m.reward(older), base, rtol=0, atol=0)
    with pytest.raises(ValueError, match="frame_channels"):
        build_motivation(SND_V, (4, 32, 32), CPU, frame_channels=3)


# ---- augmentations and pairs -------------------------------------------------------------------------------------


def test_mask_tiles_fraction_and_tile_shape() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.ones(64, 2, 32, 32)
    y = mask_tiles(x, 0.1, tile=4, generator=g)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.01
    assert torch.equal(y[:, 0], y[:, 1])  # one mask for all channels of a sample
    tiles = y[:, 0].reshape(64, 8, 4, 8, 4)
    assert torch.equal(tiles.amin(dim=(2, 4)), tiles.amax(dim=(2, 4)))  # whole tiles are dropped or kept
    # A drawn tile side divides the frame (12 is skipped for 32 px).
    assert mask_tiles(x, 0.1, generator=g).shape == x.shape


def test_uniform_noise_range_and_mean() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(200_000)
    noise = uniform_noise(x.view(-1, 1, 1, 1), 0.2, g).flatten()
    assert noise.min().item() >= -0.2 and noise.max().item() <= 0.2
    # Seeded draws; 5 standard errors of 200,000 uniform draws on [-0.2, 0.2] (std 0.2 / sqrt(3)) for the mean, and
    # for the std the same relative to it: a uniform's sample std has relative standard error sqrt((9/5 - 1) / 4) /
    # sqrt(n) = 0.447 / sqrt(n). A wrong range (0.1 or 0.4) is off by 50 % or more.
    assert abs(noise.mean().item()) < sampling(0.2 / math.sqrt(3), draws=200_000)
    assert noise.std().item() == pytest.approx(0.2 / math.sqrt(3), rel=sampling(0.447, draws=200_000))


def test_augment_applies_each_augmentation_per_sample_with_its_probability() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.full((4000, 1, 16, 16), 0.5)
    noisy = augment(x, "noise", 0.5, 0.1, 0.2, g)
    changed = (noisy != x).flatten(1).any(dim=1).float().mean().item()
    assert changed == pytest.approx(0.5, abs=sampling(0.5, draws=4000))  # seeded: 5 SE of 4000 Bernoulli(0.5) draws
    masked = augment(x, "mask", 1.0, 0.1, 0.2, g)
    assert ((masked == 0) | (masked == 0.5)).all()
    assert torch.equal(augment(x, "none", 1.0, 0.1, 0.2, g), x)


def test_pair_sampling_proportions() -> None:
    g = torch.Generator().manual_seed(3)
    idx_a, idx_b, labels = sample_pairs(20_000, 1000, 0.5, CPU, g)
    assert labels.mean().item() == pytest.approx(0.5, abs=sampling(0.5, draws=20_000))  # seeded: 5 SE, Bernoulli(0.5)
    close = labels == 0
    assert torch.equal(idx_a[close], idx_b[close])
    assert (idx_a[~close] != idx_b[~close]).float().mean().item() > 0.99  # far partners are other states
    assert int(idx_a.min()) >= 0 and int(idx_a.max()) < 1000
    assert sample_pairs(1000, 10, 0.0, CPU, g)[2].sum().item() == 0.0


def test_rollout_next_obs_crosses_to_the_final_observation() -> None:
    storage = RolloutStorage(3, 2, (1, 2, 2), CPU)
    for t in range(3):
        storage.obs[t] = torch.tensor([10 * t, 10 * t + 1], dtype=torch.uint8).view(2, 1, 1, 1)
    storage.set_last_obs(torch.tensor([30, 31], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 2, 2))
    idx = torch.arange(6)
    nxt = storage.next_obs(idx)[:, 0, 0, 0].tolist()
    assert nxt == [10, 11, 20, 21, 30, 31]


# ---- learning check ----------------------------------------------------------------------------------------------


def _spread(target: torch.nn.Module, frames: torch.Tensor, cfg: MotivationConfig) -> float:
    """Mean pairwise feature distance between distinct states over the mean distance between two augmented
    views of the same state."""
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        z = target(frames)
        distinct = torch.cdist(z, z).pow(2).sum() / (len(z) * (len(z) - 1))
        va = augment(frames, cfg.augmentations, cfg.aug_prob, cfg.aug_tile_drop, cfg.aug_noise, g)
        vb = augment(frames, cfg.augmentations, cfg.aug_prob, cfg.aug_tile_drop, cfg.aug_noise, g)
        same = (target(va) - target(vb)).pow(2).sum(dim=1).mean()
    return float(distinct / same)


def test_trained_snd_v_target_spreads_distinct_states_more_than_a_frozen_random_target() -> None:
    torch.manual_seed(0)
    cfg = replace(SND_V, target_learning_rate=3e-4)
    m = build_motivation(cfg, (1, 16, 16), CPU)
    assert isinstance(m, SNDV)
    # 32 synthetic states: a bright 4x4 square at distinct positions over faint noise.
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 40, (32, 1, 16, 16), dtype=torch.uint8, generator=g)
    for i in range(32):
        r, c = divmod(i, 8)
        frames[i, 0, r * 4 : r * 4 + 4, c * 2 : c * 2 + 4] = 255
    x = frames.float() / 255.0
    frozen = _spread(m.target, x, cfg)
    batch = MotivationBatch.from_obs(frames)
    for _ in range(300):
        loss, _ = m.target_loss(batch)
        m.target_optimizer.zero_grad()
        loss.backward()
        m.target_optimizer.step()
    trained = _spread(m.target, x, cfg)
    print(f"spread ratio frozen {frozen:.2f} -> trained {trained:.2f}")
    assert trained > 1.5 * frozen
