"""Unit tests for rlsweep.motivation: running statistics, RND (method.md §4.3-4.5) and the no-motivation case.

Expected rewards and losses are recomputed here from the RND's own target and predictor networks (forward
passes only), following the formulas of method.md §4.3 (r = ½ Σ_k (T_k − P_k)², optionally / running std,
clipped to [0, clip]) and §4.4 (masked mean squared error).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from tolerance import FLOAT32_EPS, adam_atol, gradient_depth, reordered_depth, rounding, sampling

from rlsweep.config.schema import MotivationConfig
from rlsweep.motivation import RND, SND, MotivationBatch, NoMotivation, RunningMeanStd, build_motivation

OBS_SHAPE = (4, 32, 32)
CPU = torch.device("cpu")
# Raw frames, no clip, no observation normalisation: the reward is the bare distillation error.
RAW = MotivationConfig(reward_clip=0.0, obs_norm="none")


def _rnd(cfg: MotivationConfig = RAW, seed: int = 0) -> RND:
    torch.manual_seed(seed)
    rnd = build_motivation(cfg, OBS_SHAPE, CPU)
    assert isinstance(rnd, RND)
    return rnd


def _obs(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *OBS_SHAPE), dtype=torch.uint8, generator=g)


@torch.no_grad()
def _sq_diff(rnd: RND, obs: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """(T(x) − P(x))² per feature, x = newest frame / 255 (minus ``mean`` if given), from the nets directly."""
    x = obs[:, 3:4].to(torch.float32) / 255.0
    if mean is not None:
        x = x - mean
    return (rnd.target(x) - rnd.predictor(x)) ** 2


def _distillation_rtol(rnd: RND, terms: int) -> float:
    """A relative bound for a sum or mean of ``terms`` squared differences T - P computed two ways (another batch,
    layout or kernel): both networks' sums reordered, worst case (reordered_depth), twice as squaring doubles a
    relative error, plus the ``terms`` added in another order. Relative to the result, as T - P is about as large as
    T at init (independent networks). A wrong mask, row or normalisation is off by 10 % or more."""
    return rounding(torch.float32, depth=2 * reordered_depth(rnd.target, rnd.predictor) + terms)


# ---- RunningMeanStd ----------------------------------------------------------------------------------------


def test_running_mean_std_matches_numpy_over_batches() -> None:
    rng = np.random.default_rng(0)
    rms = RunningMeanStd((1, 8, 8))
    seen = []
    for size, loc, scale in [(5, 0.0, 1.0), (17, 3.0, 0.5), (3, -2.0, 4.0), (40, 10.0, 2.0)]:
        batch = rng.normal(loc, scale, size=(size, 1, 8, 8))
        seen.append(batch)
        rms.update(torch.from_numpy(batch))
        every = np.concatenate(seen)
        # The prior count c = 1e-4 (mean 0, var 1) pooled with n samples moves the mean by c / n of itself and the
        # variance by at most c / n (|1 - var| + mean^2); the std by no more than the variance, relative. Rounding
        # (float64: the batch moments and 4 merges, < 128 roundings of numbers up to max x^2) is far below.
        c_n, mean, var = 1e-4 / len(every), every.mean(axis=0), every.var(axis=0)
        var_rtol = c_n * float(np.max((np.abs(1 - var) + mean**2) / var))
        x_size = float(np.abs(every).max())
        mean_atol, var_atol = rounding(np.float64, 128, scale=x_size), rounding(np.float64, 128, scale=x_size**2)
        np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=c_n, atol=mean_atol)
        np.testing.assert_allclose(rms.var.numpy(), var, rtol=var_rtol, atol=var_atol)
        np.testing.assert_allclose(rms.std.numpy(), every.std(axis=0), rtol=var_rtol, atol=var_atol)
        assert rms.count == pytest.approx(len(every) + 1e-4, rel=rounding(float, depth=4))  # 4 float64 additions
    assert rms.mean.shape == (1, 8, 8)


def test_running_mean_std_state_dict_round_trip() -> None:
    rng = np.random.default_rng(1)
    rms = RunningMeanStd((1, 8, 8))
    rms.update(torch.from_numpy(rng.normal(2.0, 3.0, size=(9, 1, 8, 8))))
    copy = RunningMeanStd((1, 8, 8))
    copy.load_state_dict(rms.state_dict())
    assert torch.equal(copy.mean, rms.mean) and torch.equal(copy.var, rms.var)
    assert copy.count == rms.count
    nxt = torch.from_numpy(rng.normal(-1.0, 0.5, size=(4, 1, 8, 8)))
    rms.update(nxt)
    copy.update(nxt)
    assert torch.equal(copy.mean, rms.mean) and torch.equal(copy.var, rms.var)
    # A fresh one that did not load the state would differ.
    fresh = RunningMeanStd((1, 8, 8))
    fresh.update(nxt)
    assert not torch.allclose(fresh.mean, rms.mean)


# ---- RND: what trains ---------------------------------------------------------------------------------------


def test_rnd_target_is_frozen_and_predictor_trains() -> None:
    rnd = _rnd(MotivationConfig())
    target_before = [p.detach().clone() for p in rnd.target.parameters()]
    pred_before = [p.detach().clone() for p in rnd.predictor.parameters()]
    assert all(not p.requires_grad for p in rnd.target.parameters())
    assert all(p.requires_grad for p in rnd.predictor.parameters())

    metrics = rnd.update(MotivationBatch.from_obs(_obs(16, 0)))

    assert all(p.grad is None for p in rnd.target.parameters())
    assert all(torch.equal(b, p) for b, p in zip(target_before, rnd.target.parameters(), strict=True))
    assert any(p.grad is not None for p in rnd.predictor.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(pred_before, rnd.predictor.parameters(), strict=True))
    assert set(metrics) == {"loss/motivation", "motivation/mask_kept"}
    assert metrics["loss/motivation"] > 0.0


def test_rnd_predictor_loss_falls_on_a_fixed_batch() -> None:
    rnd = _rnd(RAW)  # the seed's element mask keeping 25 %
    obs = _obs(16, 1)
    first = _sq_diff(rnd, obs).mean().item()
    for _ in range(50):
        rnd.update(MotivationBatch.from_obs(obs))
    last = _sq_diff(rnd, obs).mean().item()
    assert last < 0.5 * first


def test_rnd_full_mask_loss_is_the_mean_squared_error() -> None:
    rnd = _rnd(replace(RAW, update_proportion=1.0))
    obs = _obs(8, 2)
    loss, kept = rnd.predictor_loss(obs)
    assert kept.item() == 1.0
    assert loss.item() == pytest.approx(_sq_diff(rnd, obs).mean().item(), rel=_distillation_rtol(rnd, 8 * 512))


def test_rnd_element_mask_keeps_a_quarter_of_the_elements() -> None:
    rnd = _rnd(MotivationConfig())
    obs = _obs(64, 3)  # 64 samples x 512 features = 32,768 Bernoulli(0.25) draws: sd of the fraction ~0.0024
    torch.manual_seed(123)
    fractions = [rnd.predictor_loss(obs)[1].item() for _ in range(3)]
    for f in fractions:
        assert 0.22 <= f <= 0.28
    # Element-wise: the kept fraction is not a whole number of rows (it would be with probability ~0).
    assert any(abs(f * 64 - round(f * 64)) > 1e-6 for f in fractions)


@pytest.mark.parametrize(("num_envs", "keep"), [(8, 1.0), (32, 1.0), (64, 0.5), (128, 0.25), (256, 0.125)])
def test_the_seeds_mask_keeps_32_envs_worth_whatever_the_number_of_envs(num_envs: int, keep: float) -> None:
    """Seed: keep = min(1, 32 / num_envs) by default (25 % at 128 envs, all at 32); a set value stays fixed."""
    torch.manual_seed(0)
    rnd = build_motivation(MotivationConfig(), OBS_SHAPE, CPU, num_envs=num_envs)
    fixed = build_motivation(MotivationConfig(update_proportion=0.25), OBS_SHAPE, CPU, num_envs=num_envs)
    assert isinstance(rnd, RND) and isinstance(fixed, RND)
    obs = _obs(64, 3)  # 32,768 Bernoulli draws per loss: sd of the kept fraction <= 0.003
    torch.manual_seed(1)  # seeded draws, 5 standard errors of the kept fraction (none when everything is kept)
    kept_sd = (keep * (1 - keep)) ** 0.5
    assert rnd.predictor_loss(obs)[1].item() == pytest.approx(keep, abs=sampling(kept_sd, draws=32_768))
    assert fixed.predictor_loss(obs)[1].item() == pytest.approx(0.25, abs=sampling(0.75**0.5 / 2, draws=32_768))


def test_rnd_sample_mask_keeps_whole_rows() -> None:
    rnd = _rnd(replace(RAW, mask="sample", update_proportion=0.5))
    obs = _obs(3, 4)
    row_means = _sq_diff(rnd, obs).mean(dim=1).tolist()
    # Masking whole rows (all 512 features alike) makes the loss the mean of the kept rows' mean errors.
    allowed = {(): 0.0}
    for k in (1, 2, 3):
        for rows in itertools.combinations(range(3), k):
            allowed[rows] = float(np.mean([row_means[r] for r in rows]))
    torch.manual_seed(7)
    partial = 0
    for _ in range(20):
        loss, kept = rnd.predictor_loss(obs)
        rows_kept = round(kept.item() * 3)
        # the kept fraction: an exact count of 0/1 elements divided once in float32 (and k/3 rounded on its way)
        assert kept.item() == pytest.approx(rows_kept / 3, abs=rounding(torch.float32, depth=2))
        near = _distillation_rtol(rnd, 3 * 512)  # the loss's masked sum against the mean of row means
        matches = [r for r in allowed if len(r) == rows_kept and loss.item() == pytest.approx(allowed[r], rel=near)]
        assert matches, (loss.item(), kept.item())
        partial += rows_kept in (1, 2)
    assert partial > 0


def _predictor_step_both_ways(cfg: MotivationConfig, obs: torch.Tensor, draw_seed: int) -> list[dict]:
    """One predictor step from the same networks and the same mask draw, on the kept rows only and on all rows
    (perf.predictor_kept_rows true / false): the loss, the kept fraction, the gradients and the rows the
    predictor was run on."""
    from rlsweep.config.schema import PerfConfig

    out = []
    for kept_rows in (True, False):
        torch.manual_seed(0)
        rnd = build_motivation(cfg, OBS_SHAPE, CPU, perf=PerfConfig(predictor_kept_rows=kept_rows), num_envs=8)
        assert isinstance(rnd, RND)
        seen: list[int] = []
        rnd.predictor.register_forward_hook(lambda _m, args, _out, seen=seen: seen.append(args[0].shape[0]))
        torch.manual_seed(draw_seed)
        loss, kept = rnd.predictor_loss(obs)
        rnd.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in rnd.predictor.parameters()]
        out.append({"loss": loss.item(), "kept": kept.item(), "grads": grads, "rows": seen})
    return out


@pytest.mark.parametrize("draw_seed", [0, 1, 2])
def test_sample_mask_on_kept_rows_only_gives_the_all_rows_loss_and_gradient(draw_seed: int) -> None:
    """perf.predictor_kept_rows: the predictor runs on the kept rows only, and the loss and every gradient are
    those of running all rows with the dropped ones zeroed (up to the order of float sums)."""
    obs = _obs(32, 5)
    only_kept, all_rows = _predictor_step_both_ways(replace(RAW, mask="sample", update_proportion=0.25), obs,
                                                    draw_seed)  # fmt: skip
    assert all_rows["rows"] == [32]
    assert only_kept["rows"] == [round(only_kept["kept"] * 32)]
    assert 0 < only_kept["rows"][0] < 32  # draw seeds chosen so the mask is partial: 32 x 0.25 = 8 kept on average
    assert only_kept["kept"] == all_rows["kept"]
    rnd = build_motivation(RAW, OBS_SHAPE, CPU)  # the networks' shapes, for the bounds
    assert isinstance(rnd, RND)
    assert only_kept["loss"] == pytest.approx(all_rows["loss"], rel=_distillation_rtol(rnd, 32 * 512))
    # A gradient: the forward bound, the backward pass through the predictor (its sums reordered again) and the
    # weight gradients' sums over rows x positions (at most 32 x 7 x 7 at the first convolution), relative to each
    # tensor's size. A dropped row's gradient let through would change it by a quarter or more.
    depth = 3 * reordered_depth(rnd.target, rnd.predictor) + 32 * 7 * 7
    for a, b in zip(only_kept["grads"], all_rows["grads"], strict=True):
        torch.testing.assert_close(
            a, b, rtol=0, atol=rounding(torch.float32, depth, scale=float(b.detach().abs().max()))
        )
    assert any(g.abs().sum() > 0 for g in only_kept["grads"])


def test_sample_mask_keeping_no_row_gives_a_zero_loss_and_gradient_both_ways() -> None:
    obs = _obs(4, 6)
    only_kept, all_rows = _predictor_step_both_ways(replace(RAW, mask="sample", update_proportion=1e-9), obs, 0)
    assert only_kept["rows"] == [0] and all_rows["rows"] == [4]
    assert only_kept["loss"] == all_rows["loss"] == 0.0 and only_kept["kept"] == all_rows["kept"] == 0.0
    assert all(g.abs().sum() == 0 for g in only_kept["grads"] + all_rows["grads"])


def test_element_mask_always_runs_every_row() -> None:
    only_kept, all_rows = _predictor_step_both_ways(RAW, _obs(16, 7), 0)  # the seed's element mask
    assert only_kept["rows"] == all_rows["rows"] == [16]
    assert only_kept["loss"] == all_rows["loss"]


# ---- RND: the reward ---------------------------------------------------------------------------------------


def test_rnd_reward_sum_half_is_half_the_summed_squared_difference() -> None:
    rnd = _rnd(RAW)
    obs = _obs(6, 5)
    r = rnd.reward(obs)
    assert r.shape == (6,)
    expected = 0.5 * _sq_diff(rnd, obs).sum(dim=1)
    close = _distillation_rtol(rnd, 512) + rounding(torch.float32, depth=2)  # and x 0.5 (exact), x 3: 1 rounding
    torch.testing.assert_close(r, expected, rtol=close, atol=0)
    # The mean reduction divides by the 512 features instead of 2, and reward_scale multiplies.
    rnd.cfg = replace(RAW, reward_reduction="mean", reward_scale=3.0)
    torch.testing.assert_close(rnd.reward(obs), 3.0 * expected * 2 / 512, rtol=close, atol=0)
    assert r.requires_grad is False


def test_rnd_reward_is_clipped_to_zero_and_reward_clip() -> None:
    obs = _obs(32, 6)
    raw = _rnd(RAW).reward(obs)
    clipped = _rnd(MotivationConfig(obs_norm="none")).reward(obs)  # same seed -> same nets, clip 1
    assert torch.all(clipped >= 0.0) and torch.all(clipped <= 1.0)
    torch.testing.assert_close(clipped, raw.clamp(max=1.0), rtol=0, atol=0)  # same nets, kernels and frames: exact
    # A large error is clipped to exactly 1.
    big = _rnd(MotivationConfig(obs_norm="none", reward_scale=1e6)).reward(obs)
    assert torch.all(raw * 1e6 > 1.0)
    assert torch.equal(big, torch.ones(32))
    # A different clip bound is honoured.
    half = _rnd(MotivationConfig(obs_norm="none", reward_clip=0.5, reward_scale=1e6)).reward(obs)
    assert torch.equal(half, torch.full((32,), 0.5))


def _prior_std(values: np.ndarray, prior_count: float = 1e-4) -> float:
    """Std of ``values`` pooled with RunningMeanStd's prior (a pseudo-sample of weight 1e-4, mean 0, var 1)."""
    total = prior_count + len(values)
    mean = values.sum() / total
    second_moment = (prior_count * (1.0 + 0.0**2) + (values**2).sum()) / total
    return float(np.sqrt(second_moment - mean**2))


def test_rnd_normalise_int_reward_divides_by_the_running_std() -> None:
    plain = _rnd(RAW)
    norm = _rnd(replace(RAW, normalise_int_reward=True))  # same seed: same nets
    seen = []
    for seed in (10, 11, 12):
        obs = _obs(8, seed)
        raw = plain.reward(obs).double().numpy()
        seen.append(raw)
        # The reward statistics include this batch before it is divided.
        std = _prior_std(np.concatenate(seen))
        # float32 batch variance of 8 rewards (about 600, spread about 25): the batch mean's 8 roundings of numbers
        # 32 times larger than the deviations, on the std (half the variance's, which the square doubles); then the
        # std's cast and the division: 8 x 32 + 8. The prior and the merges are float64 in both. Dividing by the std
        # without this batch would be 10 % off or more.
        normalised = rounding(torch.float32, depth=8 * 32 + 8)
        np.testing.assert_allclose(norm.reward(obs).double().numpy(), raw / std, rtol=normalised)
    # Far from a no-op: the raw errors are ~20 with a spread of ~1, so dividing changes them a lot.
    assert np.all(np.abs(norm.reward(_obs(8, 13)).numpy() - plain.reward(_obs(8, 13)).numpy()) > 1.0)


def test_rnd_reads_only_the_newest_frame() -> None:
    rnd = _rnd(RAW)
    obs = _obs(5, 20)
    base = rnd.reward(obs)
    older = obs.clone()
    older[:, :3] = 255 - older[:, :3]  # change every older frame
    torch.testing.assert_close(rnd.reward(older), base, rtol=0, atol=0)
    newest = obs.clone()
    newest[:, 3] = 255 - newest[:, 3]
    assert (rnd.reward(newest) - base).abs().min().item() > 0.0


def test_rnd_observation_statistics_and_mean_normalisation_use_the_newest_frame() -> None:
    rnd = _rnd(replace(RAW, obs_norm="mean"))
    a, b = _obs(6, 30), _obs(10, 31)
    rnd.update_stats(a)
    rnd.update_stats(b)
    frames = torch.cat([a, b])[:, 3:4].double().numpy() / 255.0
    # The prior count 1e-4 (mean 0) moves the mean by 1e-4 / 16 of itself; the float32 frames / 255 and batch means of
    # up to 10 (and the merge) round 16 times, of numbers below 1. The mean of all 4 frames would be 25 % off or more.
    mean_float32 = rounding(torch.float32, depth=16)
    np.testing.assert_allclose(rnd.obs_rms.mean.numpy(), frames.mean(axis=0), rtol=1e-4 / 16, atol=mean_float32)
    # The reward is computed on x − μ.
    obs = _obs(4, 32)
    expected = 0.5 * _sq_diff(rnd, obs, mean=rnd.obs_rms.mean.float()).sum(dim=1)
    torch.testing.assert_close(rnd.reward(obs), expected, rtol=_distillation_rtol(rnd, 512) + FLOAT32_EPS, atol=0)
    assert not torch.allclose(expected, 0.5 * _sq_diff(rnd, obs).sum(dim=1))


def test_rnd_state_dict_round_trip() -> None:
    cfg = replace(RAW, obs_norm="mean")
    src = _rnd(cfg, seed=0)
    src.update_stats(_obs(4, 40))
    src.update(MotivationBatch.from_obs(_obs(8, 41)))
    dst = _rnd(cfg, seed=1)  # different initial nets, empty statistics
    obs = _obs(4, 42)
    assert not torch.allclose(dst.reward(obs), src.reward(obs))
    buffer = io.BytesIO()  # through bytes, as a checkpoint file goes
    torch.save(src.state_dict(), buffer)
    buffer.seek(0)
    dst.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(dst.reward(obs), src.reward(obs), rtol=0, atol=0)
    assert torch.equal(dst.obs_rms.mean, src.obs_rms.mean)
    # The optimiser state travels too: one more identical step keeps the two identical.
    torch.manual_seed(3)
    src.update(MotivationBatch.from_obs(obs))
    torch.manual_seed(3)
    dst.update(MotivationBatch.from_obs(obs))
    torch.testing.assert_close(dst.reward(obs), src.reward(obs), rtol=0, atol=0)


# ---- no motivation -----------------------------------------------------------------------------------------


def test_no_motivation_gives_zero_reward_and_trains_nothing() -> None:
    m = build_motivation(MotivationConfig(name="none"), OBS_SHAPE, CPU)
    assert isinstance(m, NoMotivation)
    assert m.needs_warmup is False
    obs = _obs(7, 50)
    m.update_stats(obs)
    r = m.reward(obs)
    assert r.shape == (7,)
    assert torch.equal(r, torch.zeros(7))
    assert m.update(MotivationBatch.from_obs(obs)) == {}
    assert m.state_dict() == {}


def test_build_motivation_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="none, rnd"):
        build_motivation(MotivationConfig(name="icm"), OBS_SHAPE, CPU)


def test_the_authors_statistics_state_is_s_t_plus_1_for_rnd_only() -> None:
    """fidelity=author sets stats_state=author: the author's RND fed s_{t+1} to its statistics, its CND/SND s_t."""
    assert build_motivation(MotivationConfig(stats_state="author"), OBS_SHAPE, CPU).stats_from_next
    assert not build_motivation(MotivationConfig(), OBS_SHAPE, CPU).stats_from_next
    snd = MotivationConfig(name="snd_v", network="c", target_loss="mse", stats_state="author")
    assert not build_motivation(snd, OBS_SHAPE, CPU).stats_from_next


def test_the_authors_variance_floor_bounds_the_standardised_input() -> None:
    flat = torch.full((16, *OBS_SHAPE), 100, dtype=torch.uint8)
    shifted = flat + 1  # one grey level above frames whose variance is (almost) zero
    floored = _rnd(MotivationConfig(obs_norm="mean_std", obs_norm_clip=100.0, obs_var_floor=1e-3))
    plain = _rnd(MotivationConfig(obs_norm="mean_std", obs_norm_clip=100.0))
    for rnd in (floored, plain):
        rnd.update_stats(flat)
    x = floored.inputs(shifted)
    # The prior count 1e-4 moves the mean (100/255) by 1e-4 / 16 of itself, which x - mean (1/255) sees 100 times
    # larger; in float32, x and the mean round once each, 100 times larger relative to x - mean, then the floor's
    # square root and the division. Without the floor (or with 1e-4) it is 3 times or more off.
    rtol = 100 * 1e-4 / 16 + rounding(torch.float32, depth=2 * 101 + 2)
    assert torch.allclose(x, torch.full_like(x, (1 / 255) / 1e-3**0.5), rtol=rtol, atol=0)
    assert plain.inputs(shifted).min().item() > 5 * x.max().item()  # without the floor: std + 1e-8, far larger


# ---- perf.reuse_target_features ------------------------------------------------------------------------------


def _rollout(rnd: RND, steps: int, num_envs: int) -> torch.Tensor:
    """Collect like the loop: statistics, then r_int(s_t) at rollout step t; the rollout's states in row order."""
    states = [_obs(num_envs, seed=100 + t) for t in range(steps)]
    for t, obs in enumerate(states):
        rnd.update_stats(obs)
        rnd.reward(obs, t)
    return torch.cat(states)


def _losses(rnd: RND, flat: torch.Tensor, rows: torch.Tensor) -> list[float]:
    out = []
    for epoch in range(2):
        torch.manual_seed(epoch)  # the same element mask for both ways
        batch = MotivationBatch(flat[rows], rows, flat, lambda r: flat[r])
        out.append(float(rnd.update(batch)["loss/motivation"]))
    return out


def test_reused_target_features_train_the_predictor_like_recomputed_ones_without_normalisation() -> None:
    from rlsweep.config.schema import PerfConfig

    rows = torch.randperm(4 * 8, generator=torch.Generator().manual_seed(0))[:12]
    runs = []
    for reuse in (False, True):
        torch.manual_seed(0)
        rnd = build_motivation(RAW, OBS_SHAPE, CPU, perf=PerfConfig(reuse_target_features=reuse), num_envs=8)
        assert isinstance(rnd, RND) and rnd.reuse_targets == reuse
        runs.append(_losses(rnd, _rollout(rnd, steps=4, num_envs=8), rows))
        if reuse:  # the target did not run in the update: its features came from collection
            kept = rnd.kept_targets(rows)
            assert kept is not None
            # collection ran the target 8 rows at a time, this 12: its sums reordered, of the features' size
            recomputed = rnd.target(_rollout_inputs(rnd, rows))
            atol = rounding(torch.float32, reordered_depth(rnd.target), scale=float(recomputed.detach().abs().max()))
            torch.testing.assert_close(kept, recomputed, rtol=0, atol=atol)
    # Raw input: the features kept from collection are the ones the update would compute. Two epochs' losses: the
    # second after an Adam step, whose rounding-sized differences (even lr-sized ones, in near-zero gradients) move
    # the loss only through those near-zero gradients, to second order; so the loss's own bound.
    np.testing.assert_allclose(runs[1], runs[0], rtol=_distillation_rtol(rnd, 12 * 512))


def _rollout_inputs(rnd: RND, rows: torch.Tensor) -> torch.Tensor:
    flat = torch.cat([_obs(8, seed=100 + t) for t in range(4)])
    with torch.no_grad():
        return rnd.inputs(flat[rows])


def test_reused_target_features_keep_the_collection_time_normalisation() -> None:
    from rlsweep.config.schema import PerfConfig

    torch.manual_seed(0)
    cfg = replace(RAW, obs_norm="mean")
    rnd = build_motivation(cfg, OBS_SHAPE, CPU, perf=PerfConfig(reuse_target_features=True), num_envs=8)
    assert isinstance(rnd, RND)
    first = _obs(8, seed=100)
    rnd.update_stats(first)
    with torch.no_grad():
        at_collection = rnd.target(rnd.inputs(first))  # normalised by the statistics after step 0
    rnd.reward(first, 0)
    for t in range(1, 4):  # the statistics move on during the rest of the rollout
        rnd.update_stats(_obs(8, seed=100 + t))
        rnd.reward(_obs(8, seed=100 + t), t)
    rows = torch.arange(8)
    kept = rnd.kept_targets(rows)
    assert kept is not None
    # the target on the same inputs: at most its sums reordered, of the features' size (features of other statistics
    # differ by far more: the assertion below)
    same = rounding(torch.float32, reordered_depth(rnd.target), scale=float(at_collection.detach().abs().max()))
    torch.testing.assert_close(kept, at_collection, rtol=0, atol=same)
    with torch.no_grad():
        now = rnd.target(rnd.inputs(first))
    assert not torch.allclose(now, at_collection)  # what recomputing at update time would have used instead
    # A new rollout (step 0 again) replaces the old features: row 0 is now the new state's.
    fresh = _obs(8, seed=7)
    with torch.no_grad():
        expected = rnd.target(rnd.inputs(fresh))
    rnd.reward(fresh, 0)
    same = rounding(torch.float32, reordered_depth(rnd.target), scale=float(expected.detach().abs().max()))
    torch.testing.assert_close(rnd.kept_targets(rows), expected, rtol=0, atol=same)  # as above


# ---- perf.target_features_per_update -------------------------------------------------------------------------


def _target_rows(rnd: RND) -> list[int]:
    """The number of rows of every target pass from now on (a forward hook)."""
    seen: list[int] = []
    rnd.target.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    return seen


def _per_update_rnd(cfg: MotivationConfig, per_update: bool) -> RND:
    from rlsweep.config.schema import PerfConfig

    torch.manual_seed(0)
    rnd = build_motivation(cfg, OBS_SHAPE, CPU, perf=PerfConfig(target_features_per_update=per_update), num_envs=8)
    assert isinstance(rnd, RND) and rnd.targets_per_update == per_update
    return rnd


def test_target_features_once_per_update_train_the_predictor_like_a_target_pass_per_minibatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The features begin_update computes with the update's statistics are those each minibatch's own target pass
    would compute: the same losses and the same predictor after two epochs. The target runs once per state, in
    chunks, and never in a minibatch step."""
    import rlsweep.motivation.distillation as distillation

    monkeypatch.setattr(distillation, "TARGET_CHUNK", 12)  # 32 states: chunks of 12, 12 and a short one of 8
    cfg = replace(RAW, obs_norm="mean_std")  # statistics that move during the rollout
    epochs = [torch.randperm(32, generator=torch.Generator().manual_seed(e))[:16] for e in range(2)]
    runs = []
    for per_update in (False, True):
        rnd = _per_update_rnd(cfg, per_update)
        flat = _rollout(rnd, steps=4, num_envs=8)
        seen = _target_rows(rnd)
        rnd.begin_update(flat)
        assert seen == ([12, 12, 8] if per_update else [])
        seen.clear()
        losses = []
        for epoch, rows in enumerate(epochs):
            torch.manual_seed(epoch)  # the same element mask both ways
            batch = MotivationBatch(flat[rows], rows, flat, lambda r, flat=flat: flat[r])
            losses.append(float(rnd.update(batch)["loss/motivation"]))
        assert seen == ([] if per_update else [16, 16])
        runs.append((losses, [p.detach().clone() for p in rnd.predictor.parameters()]))
    # The target's features in chunks of 12, 12 and 8 against minibatches of 16: the loss's own bound per epoch, the
    # second after an Adam step whose differences move the loss only to second order (as above)
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=_distillation_rtol(rnd, 16 * 512))
    # the predictors after two Adam steps from gradients of 16 rows through the first convolution's 7 x 7 outputs
    grads = gradient_depth(rnd.target, rnd.predictor, rows_positions=16 * 7 * 7)
    atol = adam_atol(2, grads, lr=cfg.learning_rate)
    for once, per_minibatch in zip(runs[1][1], runs[0][1], strict=True):
        torch.testing.assert_close(once, per_minibatch, rtol=rounding(torch.float32, depth=2), atol=atol)


def test_target_features_of_an_update_are_dropped_by_new_statistics_a_new_rollout_or_a_load() -> None:
    rnd = _per_update_rnd(replace(RAW, obs_norm="mean"), per_update=True)
    flat = _rollout(rnd, steps=4, num_envs=8)
    rows = torch.arange(8)
    state = rnd.state_dict()
    for new_data in (lambda: rnd.update_stats(_obs(8, 9)), lambda: rnd.reward(_obs(8, 9), 0),
                     lambda: rnd.load_state_dict(state)):  # fmt: skip
        rnd.begin_update(flat)
        assert rnd.kept_targets(rows) is not None
        new_data()
        assert rnd.kept_targets(rows) is None  # a minibatch step now runs the target, with the new statistics
    rnd.begin_update(flat)  # the next update's features: normalised by the statistics as they are now
    with torch.no_grad():
        expected = rnd.target(rnd.inputs(flat[rows]))
    # begin_update ran the target over 32 states in chunks, this over 8: its sums reordered, of the features' size
    same = rounding(torch.float32, reordered_depth(rnd.target), scale=float(expected.detach().abs().max()))
    torch.testing.assert_close(rnd.kept_targets(rows), expected, rtol=0, atol=same)


@pytest.mark.parametrize("name", ["snd_v", "snd_vic", "snd_std"])
def test_a_trained_target_computes_no_features_before_the_update(name: str) -> None:
    from rlsweep.config.schema import PerfConfig

    snd = build_motivation(replace(RAW, name=name), OBS_SHAPE, CPU, perf=PerfConfig(), num_envs=8)
    assert isinstance(snd, SND) and not snd.targets_per_update  # SND's target changes at every minibatch step
    snd.begin_update(_obs(32, 1))
    assert snd.kept_targets(torch.arange(8)) is None
