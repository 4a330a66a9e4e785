"""Unit tests for the speed switches (rlsweep.compute.perf and the ``perf.*`` keys): each must keep the method's
numbers.

Fused Adam, bf16 autocast and ``torch.compile`` are compared with the plain path on the same weights and
inputs; statistics kept on the device must read back as the per-minibatch means; the lazily gathered s_{t+1}
must not be gathered for RND; envs without asynchronous stepping must refuse a wait without a step.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tolerance import reordered_depth, rounding
from torch.distributions import Categorical

from rlsweep.agent import PPOUpdater
from rlsweep.agent.ppo import Batch
from rlsweep.compute.perf import (
    Uploader,
    autocast,
    bf16_warning,
    compile_modules,
    copy_outputs,
    cpu_has_bf16,
    mean_stats,
    prepare_modules,
    stacked_cpu_warning,
    to_floats,
    unit_frames,
)
from rlsweep.config import ConfigError, check_value
from rlsweep.config.schema import MotivationConfig, PerfConfig, PPOConfig
from rlsweep.envs.synthetic import FakeEnv
from rlsweep.models import build_policy
from rlsweep.models.policy import PolicyOutput
from rlsweep.motivation import MotivationBatch, build_motivation

OBS_SHAPE = (4, 32, 32)
CPU = torch.device("cpu")
PPO = PPOConfig(num_envs=4, num_steps=8, update_epochs=2, minibatch_size=8, learning_rate=1e-3)


def _obs(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *OBS_SHAPE), dtype=torch.uint8, generator=g)


def _batch(policy: torch.nn.Module, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(1)
    obs = _obs(size, 2)
    actions = torch.randint(0, 5, (size,), generator=g)
    with torch.no_grad():
        logprobs = Categorical(logits=policy(obs.float() / 255.0).logits).log_prob(actions)
    return Batch(obs, actions, logprobs, torch.randn(size, generator=g), torch.randn(size, generator=g),
                 torch.randn(size, generator=g))  # fmt: skip


def _updated_params(fused: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    policy = build_policy("A", OBS_SHAPE, 5, 0.1)
    batch = _batch(policy)
    torch.manual_seed(3)  # the same minibatch indices for both optimisers
    PPOUpdater(policy, PPO, PerfConfig(fused_adam=fused)).update(batch)
    return [p.detach().clone() for p in policy.parameters()]


def test_fused_adam_makes_the_same_update_as_the_per_tensor_loop() -> None:
    plain, fused = _updated_params(False), _updated_params(True)
    torch.manual_seed(0)
    start = [p.detach() for p in build_policy("A", OBS_SHAPE, 5, 0.1).parameters()]
    moved = max(float((p - q).abs().max()) for p, q in zip(plain, start, strict=True))
    assert moved > 1e-4  # the update did something ...
    # ... and the same thing, up to rounding: no epsilon-times-depth bound here (rule 5): Adam's eps 1e-8 turns the
    # rounding of near-zero gradients into visible steps, and the next minibatch's gradients follow the parameters.
    # Measured after these 8 steps of lr 1e-3: 6.1e-7 apart (ATEN_CPU_CAPABILITY=default), 1.1e-6 (avx2). Allowed:
    # 1 % of one step, 9 times the largest seen, and 10 times below what an optimiser mistake moves a parameter (a
    # wrong bias correction or eps placement changes a step by a sizable fraction of lr); plus the rounding of
    # p - step itself, once per step relative to p.
    for p, q in zip(plain, fused, strict=True):
        torch.testing.assert_close(q, p, rtol=rounding(torch.float32, depth=8), atol=0.01 * PPO.learning_rate)


def test_statistics_stay_tensors_and_read_back_as_minibatch_means() -> None:
    torch.manual_seed(0)
    policy = build_policy("A", OBS_SHAPE, 5, 0.1)
    calls: list[float] = []

    def after(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        calls.append(float(len(calls) + 1))
        return {"loss/motivation": torch.tensor(calls[-1])}

    stats = PPOUpdater(policy, PPO).update(_batch(policy), after_minibatch=after)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in stats.values())
    floats = to_floats(stats)
    # 2 epochs x 4 minibatches: mean(1..8), a float32 mean of 8 numbers (7 additions, a division) against float64
    assert floats["loss/motivation"] == pytest.approx(np.mean(calls), rel=rounding(torch.float32, depth=8))
    assert set(floats) >= {"loss/total", "ppo/grad_norm", "ppo/clipfrac"}
    assert mean_stats([{"a": torch.tensor(1.0)}, {"a": torch.tensor(3.0), "b": torch.tensor(5.0)}]) == {
        "a": torch.tensor(2.0),
        "b": torch.tensor(5.0),
    }
    assert to_floats({}) == {}


def test_bf16_support_is_read_from_the_cpus_flags() -> None:
    avx2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
    sapphire = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    zen4 = "flags\t\t: avx2 avx512f avx512_bf16\n"
    assert cpu_has_bf16(avx2) is False
    assert cpu_has_bf16(sapphire) is True and cpu_has_bf16(zen4) is True
    assert cpu_has_bf16("model name\t: something without flags\n") is None


def test_bf16_on_a_cpu_without_bf16_warns_and_nothing_else_does() -> None:
    here = cpu_has_bf16()
    warning = bf16_warning(CPU, "bf16")
    assert (warning is not None) == (here is False)  # this machine's own answer, whichever it is
    if warning is not None:
        assert "perf.autocast=bf16" in warning and "perf.autocast=none" in warning
    assert bf16_warning(CPU, "none") is None
    assert bf16_warning(torch.device("cuda"), "bf16") is None  # GPUs compute bf16 natively


def test_stacked_seeds_on_the_cpu_warn_and_nothing_else_does() -> None:
    warning = stacked_cpu_warning(CPU, 2)
    assert warning is not None and "seeds_per_process=1" in warning and warning.startswith("2 seeds")
    assert stacked_cpu_warning(CPU, 1) is None
    assert stacked_cpu_warning(torch.device("cuda"), 4) is None  # the switch is for a GPU


def test_bf16_autocast_keeps_outputs_float32_and_close() -> None:
    torch.manual_seed(0)
    policy = build_policy("A", OBS_SHAPE, 5, 0.1)
    obs = _obs(16, 4)
    plain = PPOUpdater(policy, PPO).forward(obs)
    bf16 = PPOUpdater(policy, PPO, PerfConfig(autocast="bf16")).forward(obs)
    assert all(t.dtype == torch.float32 for t in bf16)
    for a, b in zip(plain, bf16, strict=True):
        # bf16 keeps 8 bits of mantissa. Each of model A's 5 layers on the way to an output (3 convolutions, the
        # hidden layer, the head) rounds its inputs and weights to bf16 (an epsilon per product; independent, so they
        # add up like the products themselves) and its outputs (half an epsilon): 1.5 epsilons of the outputs' size
        # per layer, 8 in all. Measured: 1.0. Wrong weights or a missing layer are off by the outputs' whole size.
        torch.testing.assert_close(
            b, a, rtol=0, atol=rounding(torch.bfloat16, depth=8, scale=float(a.detach().abs().max()))
        )
    with autocast(CPU, "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast(CPU, "none"):
        assert not torch.is_autocast_enabled("cpu")

    cfg = MotivationConfig(reward_clip=0.0, obs_norm="none", update_proportion=1.0)
    torch.manual_seed(1)
    rnd = build_motivation(cfg, OBS_SHAPE, CPU)
    torch.manual_seed(1)
    rnd_bf16 = build_motivation(cfg, OBS_SHAPE, CPU, perf=PerfConfig(autocast="bf16"))
    # The intrinsic reward stays float32 (a small difference of two outputs); the predictor's loss is autocast.
    assert torch.equal(rnd_bf16.reward(obs), rnd.reward(obs))
    loss, _ = rnd.predictor_loss(obs)
    loss_bf16, _ = rnd_bf16.predictor_loss(obs)
    assert loss_bf16.dtype == torch.float32 and not torch.equal(loss_bf16, loss)
    # T - P in bf16: the target's 4 and the predictor's 6 layers at 1.5 epsilons each (as above) of the features'
    # size; the networks are independent at init, so |T - P| is about sqrt(2) times that size, and squaring doubles
    # a relative error: 2 x 15 / sqrt(2) ~ 21 epsilons, 24. Measured: 0.13. Wrong frames or nets change it entirely.
    torch.testing.assert_close(loss_bf16, loss, rtol=rounding(torch.bfloat16, depth=24), atol=0.0)


@pytest.mark.slow
def test_compiled_policy_matches_eager_and_keeps_checkpoint_keys() -> None:
    torch.manual_seed(0)
    eager = build_policy("A", OBS_SHAPE, 5, 0.1)
    compiled = copy.deepcopy(eager)
    compile_modules([compiled], "default")
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints load either way
    x = _obs(8, 5).float() / 255.0
    # The compiled kernels may fuse and sum in another order: every layer's sums reordered, worst case, relative to
    # the outputs' size (measured: 5.5 epsilons; the bound is ~4,800). Wrong weights are off by the whole size.
    depth = reordered_depth(eager)
    with torch.no_grad():
        for a, b in zip(eager(x), compiled(x), strict=True):
            torch.testing.assert_close(
                b, a, rtol=0, atol=rounding(torch.float32, depth, scale=float(a.detach().abs().max()))
            )
    untouched = build_policy("A", OBS_SHAPE, 5, 0.1)
    compile_modules([untouched], "none")
    assert untouched._compiled_call_impl is None


def test_compiled_outputs_are_copies_the_next_call_cannot_overwrite() -> None:
    """What copy_outputs guards against on CUDA (a graph replay writes its outputs into the same memory every
    call), played here by a compiled call that returns one static buffer, as a replay does."""
    torch.manual_seed(0)
    policy = build_policy("A", OBS_SHAPE, 5, 0.1)
    x = _obs(4, 7).float() / 255.0
    with torch.no_grad():
        static = policy(x)
    policy._compiled_call_impl = lambda *args, **kwargs: static  # where Module.compile puts the compiled call
    copy_outputs(policy)
    first = policy(x)
    assert isinstance(first, PolicyOutput)
    for kept, out in zip(static, first, strict=True):
        assert out.data_ptr() != kept.data_ptr()
        kept.add_(1.0)  # the next replay overwrites the static outputs
    # the copy the caller kept is untouched: the same addition on the same numbers, so exact
    torch.testing.assert_close(first.logits + 1.0, static.logits, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match=r"Module\.compile"):
        copy_outputs(build_policy("A", OBS_SHAPE, 5, 0.1))


def test_rnd_never_gathers_successors_and_snd_vic_does() -> None:
    obs = _obs(16, 6)
    gathered: list[torch.Tensor] = []

    def successors(rows: torch.Tensor) -> torch.Tensor:
        gathered.append(rows)
        return obs[rows]

    torch.manual_seed(0)
    rnd = build_motivation(MotivationConfig(), OBS_SHAPE, CPU)
    rnd.update(MotivationBatch(obs, torch.arange(16), obs, successors))
    assert gathered == []
    vic = build_motivation(MotivationConfig(name="snd_vic", network="vic", target_loss="vicreg"), OBS_SHAPE, CPU)
    vic.update(MotivationBatch(obs, torch.arange(16), obs, successors))
    assert len(gathered) == 1 and torch.equal(gathered[0], torch.arange(16))


def test_sync_backends_step_in_step_wait() -> None:
    a, b = FakeEnv(3, 32, 4, 50, seed=7), FakeEnv(3, 32, 4, 50, seed=7)
    a.reset(), b.reset()
    actions = np.array([1, 2, 3])
    b.step_async(actions)
    actions[:] = 0  # the env keeps its own copy of the actions
    expected, got = a.step(np.array([1, 2, 3])), b.step_wait()
    assert np.array_equal(expected.obs, got.obs) and np.array_equal(expected.reward, got.reward)
    with pytest.raises(RuntimeError, match="step_wait"):
        b.step_wait()


def test_cpu_upload_is_a_view_of_the_env_buffer() -> None:
    frames = np.zeros((2, *OBS_SHAPE), dtype=np.uint8)
    tensor = Uploader(CPU, pin=True)(frames)
    frames[0, 0, 0, 0] = 9
    assert tensor.dtype == torch.uint8 and int(tensor[0, 0, 0, 0]) == 9  # no copy on the CPU


@pytest.mark.parametrize(("key", "value"), [("perf.compile", "fast"), ("perf.autocast", "fp16")])
def test_perf_choices_are_validated(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key}: '{value}' \(allowed: none, "):
        check_value(key, value)


def test_channels_last_policy_and_predictor_compute_the_same_function() -> None:
    torch.manual_seed(0)
    plain = build_policy("A", OBS_SHAPE, 5, 0.1)
    nhwc = copy.deepcopy(plain)
    prepare_modules([nhwc], channels_last=True, compile_mode="none")
    conv = next(m for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    obs = _obs(8, 7)
    nchw_perf, nhwc_perf = PerfConfig(channels_last=False), PerfConfig(channels_last=True)
    nchw_out = PPOUpdater(plain, PPO, nchw_perf).forward(obs)
    assert next(m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous()
    # NHWC convolutions sum in another order: every layer's sums reordered, worst case, relative to the outputs' size
    # (measured: 7.7 epsilons). Weights read in the wrong layout would change the outputs by their whole size.
    depth = reordered_depth(plain)
    for a, b in zip(nchw_out, PPOUpdater(nhwc, PPO, nhwc_perf).forward(obs), strict=True):
        torch.testing.assert_close(
            b, a, rtol=0, atol=rounding(torch.float32, depth, scale=float(a.detach().abs().max()))
        )
    torch.manual_seed(2)
    rnd = build_motivation(MotivationConfig(), OBS_SHAPE, CPU, perf=nchw_perf)
    torch.manual_seed(2)
    rnd_nhwc = build_motivation(MotivationConfig(), OBS_SHAPE, CPU, perf=nhwc_perf)
    # r_int sums 512 squared differences of the two networks' features: both networks' sums reordered, twice (the
    # square doubles a relative error), plus the 512-term sum; relative, as T - P is as large as T at init
    reward_rtol = rounding(torch.float32, depth=2 * reordered_depth(rnd.target, rnd.predictor) + 512)
    torch.testing.assert_close(rnd_nhwc.reward(obs), rnd.reward(obs), rtol=reward_rtol, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_unit_frames_are_the_frames_over_255_in_the_asked_layout(channels_last: bool) -> None:
    frames = _obs(6, 3)
    x = unit_frames(frames, channels_last)
    assert x.dtype == torch.float32 and torch.equal(x, frames.float() / 255)  # bit for bit
    assert x.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert x.is_contiguous() != channels_last  # 4 channels: the two layouts differ


@pytest.mark.parametrize(("channels_last", "seeds"), [(True, 1), (False, 1), (True, 2)])
def test_the_policy_reads_frames_in_its_convolutions_layout(channels_last: bool, seeds: int) -> None:
    """NHWC convolutions get NHWC frames; NCHW ones, and stacked seeds' (always NCHW), get NCHW frames."""
    from rlsweep.compute.stacked import SeedStack

    nets = [build_policy("A", OBS_SHAPE, 5, 0.1) for _ in range(seeds)]
    policy = nets[0] if seeds == 1 else SeedStack(nets)
    updater = PPOUpdater(policy, PPO, PerfConfig(channels_last=channels_last), seeds=seeds)
    seen: list[torch.Tensor] = []
    policy.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    updater.forward(_obs(4, 1))
    nhwc = channels_last and seeds == 1
    assert seen[0].is_contiguous(memory_format=torch.channels_last) == nhwc and seen[0].is_contiguous() != nhwc
    conv = next(p for p in policy.parameters() if p.dim() >= 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) == nhwc if conv.dim() == 4 else conv.is_contiguous()
