"""model=cleanrl and motivation.network=cleanrl: CleanRL ppo_rnd_envpool.py's layer shapes and parameter counts, its
init and skip connection, and the experiment=cleanrl_rnd preset (composes, validates, trains on the fake env).

The expected numbers are derived by hand from the architecture (rlsweep/models/cleanrl.py's docstring):

Nature CNN on an 84x84 side, no padding, out = (in - kernel) // stride + 1:
    conv 8x8/4: (84 - 8) // 4 + 1 = 20;  conv 4x4/2: (20 - 4) // 2 + 1 = 9;  conv 3x3/1: (9 - 3) // 1 + 1 = 7
    flatten: 64 channels * 7 * 7 = 3136
Parameters (weights + biases):
    policy conv1  4 -> 32, 8x8:  32 * 4 * 64 + 32   =   8,224
           conv2 32 -> 64, 4x4:  64 * 32 * 16 + 64  =  32,832
           conv3 64 -> 64, 3x3:  64 * 64 * 9 + 64   =  36,928
           FC 3136 -> 256:       3136 * 256 + 256   = 803,072
           FC 256 -> 448:        256 * 448 + 448    = 115,136   (trunk: 996,192)
           actor FC 448 -> 448:  448 * 448 + 448    = 201,152
           actor FC 448 -> 18:   448 * 18 + 18      =   8,082
           critic extra 448->448:                     201,152
           V_ext, V_int 448 -> 1: 2 * (448 + 1)     =     898
           total: 996,192 + 201,152 + 8,082 + 201,152 + 898 = 1,407,476
    RND    conv1  1 -> 32, 8x8:  32 * 1 * 64 + 32   =   2,080;  conv2 32,832;  conv3 36,928
           target FC 3136 -> 512: 3136 * 512 + 512  = 1,606,144
           target total: 2,080 + 32,832 + 36,928 + 1,606,144 = 1,677,984
           predictor: the target's 1,677,984 + 2 * (512 * 512 + 512 = 262,656) = 2,203,296
(The same totals come out of CleanRL's own Agent(18 actions) and RNDModel, counted in its venv.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from inline import metrics, record, run_inline
from tolerance import reordered_depth, rounding
from torch import nn

from rlsweep.config.files import typed_config
from rlsweep.config.validate import ConfigError, validate
from rlsweep.launching.plan import compose_point
from rlsweep.models import SQRT2, build_distillation_nets, build_policy
from rlsweep.models.cleanrl import AddedCritic

OBS = (4, 84, 84)
FRAME = (1, 84, 84)
ACTIONS = 18


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _gains_ok(layer: nn.Module, gain: float) -> bool:
    w = layer.weight.detach()
    sv = torch.linalg.svdvals(w.reshape(w.shape[0], -1))
    # float32 orthogonal init (a Householder QR) and svdvals (another sweep of reflections) each round an element about
    # once per reflection, n = the larger side: 2 n roundings, relative. A wrong gain is off by 30 % or more.
    rtol = rounding(torch.float32, depth=2 * max(w.shape[0], w[0].numel()))
    orthogonal = torch.allclose(sv, torch.full_like(sv, gain), rtol=rtol, atol=0)  # gain >= 0.01: never near zero
    return bool(orthogonal) and not torch.count_nonzero(layer.bias)


def test_policy_layer_shapes_and_parameter_count() -> None:
    policy = build_policy("cleanrl", OBS, ACTIONS, 0.1)
    assert _shapes(policy.features) == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3), (256, 3136), (448, 256)]
    assert _shapes(policy.actor) == [(448, 448), (ACTIONS, 448)]
    assert _shapes(policy.critic) == [(448, 448), (1, 448), (1, 448)]
    assert _count(policy.features) == 8_224 + 32_832 + 36_928 + 803_072 + 115_136 == 996_192
    assert _count(policy) == 1_407_476
    out = policy(torch.rand(3, *OBS))
    assert out.logits.shape == (3, ACTIONS) and out.value_ext.shape == (3,) and out.value_int.shape == (3,)


def test_policy_init_and_added_skip_connection() -> None:
    torch.manual_seed(0)
    policy = build_policy("cleanrl", OBS, ACTIONS, 0.1)
    roles = policy.layers_by_role()
    assert all(_gains_ok(layer, SQRT2) for layer in roles["features"])
    assert all(_gains_ok(layer, 0.01) for layer in [*roles["actor_hidden"], *roles["actor_output"]])
    assert all(_gains_ok(layer, 0.01) for layer in roles["critic_output"])
    (extra,) = roles["critic_hidden"]
    assert _gains_ok(extra, 0.1)  # CleanRL's extra_layer std=0.1 = critic_init 0.1
    assert isinstance(policy.critic, AddedCritic)
    # The heads read trunk + ReLU(extra(trunk)): CleanRL's critic_ext(features + hidden).
    x = torch.rand(2, *OBS)
    hidden = policy.features(x)
    h = hidden + torch.relu(extra(hidden))
    v_ext, v_int = policy.critic(hidden)

    # The same layers on the same numbers: at most every sum reordered, of each output's size. Heads reading the
    # trunk alone (no extra layer) would be off by a sizable part of it.
    def same(a: torch.Tensor, net: nn.Module) -> dict[str, float]:
        return {"rtol": 0.0, "atol": rounding(torch.float32, reordered_depth(net), scale=float(a.detach().abs().max()))}

    torch.testing.assert_close(v_ext, policy.critic.value_ext(h).squeeze(-1), **same(v_ext, policy.critic))
    torch.testing.assert_close(v_int, policy.critic.value_int(h).squeeze(-1), **same(v_int, policy.critic))
    logits = policy.actor(hidden)
    torch.testing.assert_close(policy(x).logits, logits, **same(logits, policy))


def test_rnd_target_and_predictor_shapes_counts_and_activations() -> None:
    target, predictor = build_distillation_nets("cleanrl", FRAME)
    convs = [(32, 1, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3)]
    assert _shapes(target) == [*convs, (512, 3136)]
    assert _shapes(predictor) == [*convs, (512, 3136), (512, 512), (512, 512)]
    assert _count(target) == 2_080 + 32_832 + 36_928 + 1_606_144 == 1_677_984
    assert _count(predictor) == 1_677_984 + 2 * 262_656 == 2_203_296
    # Leaky ReLU after every conv, ReLU between the predictor's FC layers, orthogonal sqrt 2, zero biases.
    assert [type(m) for m in target.encoder if not isinstance(m, (nn.Conv2d, nn.Flatten))] == [nn.LeakyReLU] * 3
    assert [type(m) for m in predictor.head if not isinstance(m, nn.Linear)] == [nn.ReLU, nn.ReLU]
    assert all(_gains_ok(m, SQRT2) for m in [*target.conv_layers(), *target.linear_layers()])
    assert target(torch.randn(5, *FRAME)).shape == predictor(torch.randn(5, *FRAME)).shape == (5, 512)


def test_cleanrl_nets_refuse_small_frames_and_coupled_init() -> None:
    with pytest.raises(ValueError, match=">= 36"):
        build_policy("cleanrl", (4, 32, 32), ACTIONS, 0.1)
    with pytest.raises(ValueError, match="coupled_init"):
        build_distillation_nets("cleanrl", FRAME, coupled_init=True)


def test_preset_composes_validates_and_has_cleanrls_shape() -> None:
    cfg = typed_config(compose_point(["experiment=cleanrl_rnd"]))
    assert (cfg.model.name, cfg.model.critic_init_gain, cfg.motivation.network) == ("cleanrl", 0.1, "cleanrl")
    env = cfg.env
    assert (env.id, env.frame_size, env.frame_stack, env.episodic_life, env.sticky_action_prob) == (
        "MontezumaRevenge-v5", 84, 4, True, 0.25,
    )  # fmt: skip
    ppo = cfg.ppo
    assert (ppo.num_envs, ppo.num_steps, ppo.update_epochs) == (16, 128, 4)
    assert ppo.num_envs * ppo.num_steps // ppo.minibatch_size == 4  # CleanRL's num_minibatches
    assert (ppo.gamma_ext, ppo.gamma_int, ppo.learning_rate, ppo.adam_eps, ppo.clip_coef) == (
        0.999, 0.99, 1e-4, 1e-5, 0.1,
    )  # fmt: skip
    assert (ppo.int_episodic, ppo.normalize_advantages, ppo.ext_adv_coef, ppo.int_adv_coef) == (False, True, 2.0, 1.0)
    mot = cfg.motivation
    assert (mot.obs_norm, mot.obs_norm_clip, mot.mask, mot.update_proportion) == ("mean_std", 5.0, "sample", 0.25)
    assert (mot.reward_reduction, mot.reward_clip, mot.warmup_steps) == ("sum_half", 0.0, 50 * 128)


def test_frame_size_84_needs_the_cleanrl_nets() -> None:
    composed = compose_point(["experiment=cleanrl_rnd"])
    validate(composed)
    with pytest.raises(ConfigError, match=r"env\.frame_size: 84 .*model=cleanrl"):
        validate({**composed, "model": {**composed["model"], "name": "A"}})
    with pytest.raises(ConfigError, match=r"env\.frame_size: 84 .*motivation\.network=cleanrl"):
        validate({**composed, "motivation": {**composed["motivation"], "network": "a"}})
    with pytest.raises(ConfigError, match=r"env\.frame_size: 86"):
        validate({**composed, "env": {**composed["env"], "frame_size": 86}})


def test_preset_trains_a_few_iterations_on_the_fake_env(tmp_path: Path) -> None:
    # The fake env at CleanRL's 84x84 frame, 4 envs x 16 steps, 2 epochs x 4 minibatches, 3 iterations.
    run_dir = run_inline(
        tmp_path, "experiment=cleanrl_rnd", "env=fake", "env.frame_size=84", "logger=none",
        "ppo.num_envs=4", "ppo.num_steps=16", "ppo.minibatch_size=16", "ppo.update_epochs=2",
        "motivation.warmup_steps=4", "budget.total_steps=192", "torch_threads=1",
    )  # fmt: skip
    assert record(run_dir)["status"] == "completed"
    rows = metrics(run_dir)
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all(r["loss/motivation"] > 0 for r in rows)
    assert rows[-1]["global_step"] == 192
