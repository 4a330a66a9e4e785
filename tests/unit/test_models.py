"""Unit tests for rlsweep.models: shapes, per-role init gains, model A's residual critic, distillation nets.

The expected architectures and gains come from docs/method.md §2 (and §3.2 for the critic gain
knob).
"""

from __future__ import annotations

import math

import pytest
import torch
from tolerance import reordered_depth, rounding
from torch import nn

from rlsweep.models import (
    DISTILLATION_ARCHS,
    MODEL_NAMES,
    SQRT2,
    DistillationNet,
    PolicyNet,
    build_distillation_nets,
    build_policy,
    layer_init,
)
from rlsweep.models.policy import ResidualLinear

# The generic tests build small frames (16-32 px); the cleanrl Nature CNN needs a side >= 36 and has its own tests
# (tests/unit/test_cleanrl_model.py).
SMALL_FRAME_MODELS = [name for name in MODEL_NAMES if name != "cleanrl"]

ROLE_GAINS = {
    "features": SQRT2,
    "actor_hidden": 0.01,
    "actor_output": 0.01,
    "critic_output": 0.01,
}


def _singular_values(layer: nn.Module) -> torch.Tensor:
    weight = layer.weight.detach()
    return torch.linalg.svdvals(weight.reshape(weight.shape[0], -1))


def _orthogonal_float32(rows: int, cols: int) -> float:
    """How far float32 orthogonal init and svdvals may move a singular value, relative: the init is a Householder QR
    and svdvals another sweep of reflections, each rounding an element about once per reflection (n = the larger
    side): 2 n roundings. A wrong gain or a non-orthogonal init is off by 30 % or more."""
    return rounding(torch.float32, depth=2 * max(rows, cols))


def _assert_orthogonal_gain(layer: nn.Module, gain: float) -> None:
    out_features = layer.weight.shape[0]
    fan_in = layer.weight[0].numel()
    sv = _singular_values(layer)
    # Orthogonal init makes rows (out <= in) or columns (out > in) orthonormal, then scales: all σ == gain.
    assert out_features <= fan_in or len(sv) == fan_in
    rtol = _orthogonal_float32(out_features, fan_in)
    torch.testing.assert_close(sv, torch.full_like(sv, gain), rtol=rtol, atol=0)  # gain >= 0.01: never near zero
    assert layer.bias is not None
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("name", SMALL_FRAME_MODELS)
@pytest.mark.parametrize("side", [96, 32, 24])
def test_policy_output_shapes(name: str, side: int) -> None:
    torch.manual_seed(0)
    model = build_policy(name, (4, side, side), 18, 0.1)
    out = model(torch.rand(2, 4, side, side))
    assert out.logits.shape == (2, 18)
    assert out.value_ext.shape == (2,)
    assert out.value_int.shape == (2,)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in out)


@pytest.mark.parametrize("name", SMALL_FRAME_MODELS)
def test_policy_init_gains_by_role(name: str) -> None:
    torch.manual_seed(1)
    model = build_policy(name, (4, 32, 32), 18, 0.1)
    roles = model.layers_by_role()
    for role, gain in ROLE_GAINS.items():
        for layer in roles[role]:
            _assert_orthogonal_gain(layer, gain)
    (critic_hidden,) = roles["critic_hidden"]
    _assert_orthogonal_gain(critic_hidden, 0.1)
    # Every weight layer of the model has exactly one role, so no layer escapes the gain rules above.
    all_layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with_role = [m for layers in roles.values() for m in layers]
    assert len(with_role) == len(all_layers)
    assert {id(m) for m in with_role} == {id(m) for m in all_layers}


@pytest.mark.parametrize("name", SMALL_FRAME_MODELS)
def test_critic_init_gain_changes_only_critic_hidden(name: str) -> None:
    torch.manual_seed(2)
    low = build_policy(name, (4, 32, 32), 18, 0.1)
    torch.manual_seed(2)
    high = build_policy(name, (4, 32, 32), 18, SQRT2)
    (hidden_high,) = high.layers_by_role()["critic_hidden"]
    _assert_orthogonal_gain(hidden_high, SQRT2)
    hidden_key = next(k for k, p in high.named_parameters() if p is hidden_high.weight)
    low_state, high_state = low.state_dict(), high.state_dict()
    differing = {k for k in low_state if not torch.equal(low_state[k], high_state[k])}
    assert differing == {hidden_key}


def test_model_a_residual_critic() -> None:
    torch.manual_seed(3)
    model = build_policy("A", (4, 32, 32), 18, 0.1)
    hidden = model.critic.hidden
    assert isinstance(hidden, ResidualLinear)
    x = torch.randn(5, 448)
    wx = x @ hidden.linear.weight.T + hidden.linear.bias
    # nn.Linear may sum the 448 products in another order and add the bias elsewhere: 449 roundings of the
    # pre-activations' size, twice in relu(y) + y. Without the residual, a negative y would be off by |y|.
    residual = rounding(torch.float32, depth=2 * 449, scale=float(wx.detach().abs().max()))
    torch.testing.assert_close(hidden(x), torch.relu(wx) + wx, rtol=0, atol=residual)
    # Negative pre-activations pass through linearly (ReLU(y) + y == y for y < 0).
    assert (wx < 0).any()
    # The value heads read that residual output.
    features = model.features(torch.rand(2, 4, 32, 32))
    h = torch.relu(model.critic.hidden_linear(features)) + model.critic.hidden_linear(features)
    # the critic's own layers on the same features: at most every sum reordered, of the value's size
    value = model.critic(features)[0]
    head = rounding(torch.float32, reordered_depth(model.critic), scale=float(value.detach().abs().max()))
    torch.testing.assert_close(model.critic.value_ext(h).squeeze(-1), value, rtol=0, atol=head)


@pytest.mark.parametrize("name", SMALL_FRAME_MODELS)
def test_gradient_reaches_every_policy_parameter(name: str) -> None:
    torch.manual_seed(4)
    model = build_policy(name, (4, 24, 24), 6, 0.1)
    out = model(torch.rand(3, 4, 24, 24))
    loss = (out.logits * torch.randn_like(out.logits)).sum() + out.value_ext.sum() - 2 * out.value_int.sum()
    loss.backward()
    for pname, param in model.named_parameters():
        assert param.requires_grad, pname
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", SMALL_FRAME_MODELS)
def test_policy_same_seed_same_weights(name: str) -> None:
    torch.manual_seed(5)
    first = build_policy(name, (4, 16, 16), 4, 0.1).state_dict()
    torch.manual_seed(5)
    second = build_policy(name, (4, 16, 16), 4, 0.1).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_unknown_names_and_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="A, B, C, D"):
        build_policy("E", (4, 32, 32), 18, 0.1)
    with pytest.raises(ValueError, match="a, c"):
        build_distillation_nets("b", (1, 32, 32))
    with pytest.raises(ValueError, match="multiple of 8"):
        build_policy("A", (4, 30, 30), 18, 0.1)
    with pytest.raises(ValueError, match="square"):
        build_distillation_nets("a", (1, 32, 48))
    with pytest.raises(ValueError, match="critic_init_gain"):
        build_policy("C", (4, 32, 32), 18, 0.0)


@pytest.mark.parametrize("arch", ["a", "c"])
def test_distillation_shapes_and_layers(arch: str) -> None:
    torch.manual_seed(6)
    target, predictor = build_distillation_nets(arch, (1, 96, 96))
    x = torch.rand(2, 1, 96, 96) - 0.5
    assert target(x).shape == (2, 512)
    assert predictor(x).shape == (2, 512)
    assert len(target.linear_layers()) == 1
    assert len(predictor.linear_layers()) == 3
    assert len(target.conv_layers()) == len(predictor.conv_layers()) == (3 if arch == "a" else 4)
    assert any(isinstance(m, nn.ELU) for m in target.modules())
    assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in predictor.modules())
    # Freezing is the caller's decision (RND freezes the target, SND trains it).
    assert all(p.requires_grad for net in (target, predictor) for p in net.parameters())
    small_target, _ = build_distillation_nets(arch, (1, 32, 32), feature_dim=64)
    assert small_target(torch.rand(3, 1, 32, 32)).shape == (3, 64)


@pytest.mark.parametrize("arch", ["a", "c"])
def test_distillation_init_gains_and_seed(arch: str) -> None:
    torch.manual_seed(7)
    target, predictor = build_distillation_nets(arch, (1, 32, 32))
    for net in (target, predictor):
        for layer in [*net.conv_layers(), *net.linear_layers()]:
            _assert_orthogonal_gain(layer, SQRT2)
    torch.manual_seed(7)
    target2, predictor2 = build_distillation_nets(arch, (1, 32, 32))
    for a, b in ((target, target2), (predictor, predictor2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("arch", ["std", "vic"])
def test_st_dim_nets_shapes_gains_and_local_map(arch: str) -> None:
    """The SND paper's ST_DIM_CNN target (ReLU, gain 0.5) and its predictor (gain 0.5 for STD, √2 for VIC)."""
    assert set(DISTILLATION_ARCHS) >= {"a", "c", "std", "vic"}
    torch.manual_seed(9)
    target, predictor = build_distillation_nets(arch, (3, 64, 64))
    x = torch.rand(2, 3, 64, 64)
    assert target(x).shape == predictor(x).shape == (2, 512)
    assert [c.out_channels for c in target.conv_layers()] == [32, 64, 64, 128]
    assert any(isinstance(m, nn.ReLU) for m in target.modules())
    for layer in [*target.conv_layers(), *target.linear_layers()]:
        _assert_orthogonal_gain(layer, 0.5)
    _assert_orthogonal_gain(predictor.linear_layers()[-1], 0.5 if arch == "std" else SQRT2)
    features, fmap = target.forward_with_map(x, 2)
    # the same layers: at most every sum reordered, of the features' size (a missing layer changes them entirely)
    same = rounding(torch.float32, reordered_depth(target), scale=float(features.detach().abs().max()))
    torch.testing.assert_close(features, target(x), rtol=0, atol=same)
    assert fmap.shape == (2, 64, 8, 8) and (fmap >= 0).all()  # after the third conv's ReLU
    with pytest.raises(ValueError, match="conv_index"):
        target.forward_with_map(x, 7)


def test_coupled_init_splits_one_orthogonal_matrix() -> None:
    torch.manual_seed(8)
    target, predictor = build_distillation_nets("c", (1, 32, 32), coupled_init=True)
    pairs: list[tuple[nn.Module, nn.Module]] = [
        *zip(predictor.conv_layers(), target.conv_layers(), strict=True),
        (predictor.linear_layers()[0], target.linear_layers()[0]),
    ]
    checked = 0
    for pred_layer, target_layer in pairs:
        wp = pred_layer.weight.detach().reshape(pred_layer.weight.shape[0], -1)
        wt = target_layer.weight.detach().reshape(target_layer.weight.shape[0], -1)
        assert not torch.equal(wp, wt)
        stacked = torch.cat([wp, wt])
        # The Gram matrix of rows (or columns) of norm sqrt(2): the init's orthogonality error (2 n roundings of 2,
        # see _orthogonal_float32) and a float32 matmul summing n products bounded by 2 (n more roundings). Halves
        # drawn independently would leave off-diagonal entries of about 2 / sqrt(n) >= 0.03, 20 times this or more.
        gram = rounding(torch.float32, depth=3 * max(stacked.shape), scale=2.0)
        if stacked.shape[0] <= stacked.shape[1]:
            # Rows of the stacked matrix are orthonormal·√2: each half keeps gain √2, halves are orthogonal.
            torch.testing.assert_close(stacked @ stacked.T, 2.0 * torch.eye(stacked.shape[0]), atol=gram, rtol=0)
            _assert_orthogonal_gain(pred_layer, SQRT2)
            _assert_orthogonal_gain(target_layer, SQRT2)
            checked += 1
        else:
            torch.testing.assert_close(stacked.T @ stacked, 2.0 * torch.eye(stacked.shape[1]), atol=gram, rtol=0)
    assert checked >= 3  # conv2..conv4 and the first FC
    # The predictor's deeper FC layers keep their own independent init.
    for layer in predictor.linear_layers()[1:]:
        _assert_orthogonal_gain(layer, SQRT2)


def test_layer_init_returns_layer_with_constant_bias() -> None:
    layer = nn.Linear(8, 4)
    assert layer_init(layer, 0.5, bias=0.25) is layer
    torch.testing.assert_close(_singular_values(layer), torch.full((4,), 0.5), rtol=_orthogonal_float32(4, 8), atol=0)
    assert torch.all(layer.bias == 0.25)
    with pytest.raises(TypeError):
        layer_init(nn.ReLU(), 1.0)
    assert math.isclose(SQRT2, 2**0.5, rel_tol=rounding(float, depth=2))  # sqrt rounds once, pow within one ulp


def test_public_types() -> None:
    model = build_policy("D", (4, 16, 16), 3, 0.1)
    assert isinstance(model, PolicyNet)
    target, predictor = build_distillation_nets("a", (1, 16, 16))
    assert isinstance(target, DistillationNet) and isinstance(predictor, DistillationNet)
