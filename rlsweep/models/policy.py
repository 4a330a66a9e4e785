"""PPO actor-critic networks "A", "B", "C", "D" of the seed (method.md §2.1-§2.4) behind one interface.

Owns: the four architectures, their per-role orthogonal initialisation (method.md §2 "Common to all author PPO
models"), and :func:`build_policy`, the only constructor the rest of rlsweep should call.

Every model is ``features`` (encoder, gain √2, ReLU) → ``actor`` (hidden FC gain 0.01 → ReLU → logits FC gain
0.01) and ``critic`` (one shared hidden FC with gain ``critic_init_gain`` → two separate 1-unit heads V_ext,
V_int with gain 0.01). All biases start at zero. Input: float32 (B, C, H, W) already scaled to [0, 1]; square
frames whose side is a multiple of 8 and >= 16 (the seed uses 4x96x96; the flatten size is derived from
``obs_shape``).

Sources: model A follows the author code ``ppo_rnd_0_0/src/model_ppo.py`` ([RL-EXP]); model C follows the
author code ``ppo_rnd_1_0`` as described in method.md §2.3 (ReLU after every layer, including FC 512); models
B and D exist only as diagrams ([RL-DIAG]), so the choices the diagrams leave open are documented on their
builders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from rlsweep.models.layers import SQRT2, check_square_frame, conv_out, layer_init

#: Gains fixed by the seed (method.md §2); only the critic hidden gain is a config knob (method.md §3.2, the seed's
#: table of RND variants).
ACTOR_HIDDEN_GAIN = 0.01
ACTOR_OUTPUT_GAIN = 0.01
CRITIC_OUTPUT_GAIN = 0.01


class PolicyOutput(NamedTuple):
    """One forward pass: unnormalised action logits and the two value estimates (already squeezed to (B,))."""

    logits: Tensor  # (B, num_actions)
    value_ext: Tensor  # (B,)
    value_int: Tensor  # (B,)


class ResidualLinear(nn.Module):
    """y = ReLU(Wx + b) + (Wx + b): model A's critic hidden layer (author ``ModelCritic``, method.md §2.1).

    Adding the pre-activation back keeps a linear path to the value heads, so negative pre-activations still
    carry signal to V_ext/V_int instead of being zeroed by the ReLU.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        return F.relu(y) + y


class Actor(nn.Module):
    """Hidden FC → ReLU → logits FC, both orthogonal gain 0.01 (author ``ModelPolicy``)."""

    def __init__(self, in_features: int, hidden: int, num_actions: int) -> None:
        super().__init__()
        self.hidden = layer_init(nn.Linear(in_features, hidden), ACTOR_HIDDEN_GAIN)
        self.output = layer_init(nn.Linear(hidden, num_actions), ACTOR_OUTPUT_GAIN)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(F.relu(self.hidden(x)))


class Critic(nn.Module):
    """Shared hidden layer → two separate 1-unit heads (V_ext, V_int), as in the author ``ModelCritic``.

    ``residual=True`` gives model A's ReLU(Wx)+Wx hidden layer; otherwise the hidden layer is FC → ReLU.
    Two ``Linear(h, 1)`` heads (not one ``Linear(h, 2)``) match the author code, so each head's weight row is
    independently orthogonal-initialised with norm 0.01.
    """

    def __init__(self, in_features: int, hidden: int, hidden_gain: float, residual: bool) -> None:
        super().__init__()
        self.hidden: nn.Module
        if residual:
            self.hidden = ResidualLinear(in_features, hidden)
        else:
            self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        layer_init(self.hidden_linear, hidden_gain)
        self.value_ext = layer_init(nn.Linear(hidden, 1), CRITIC_OUTPUT_GAIN)
        self.value_int = layer_init(nn.Linear(hidden, 1), CRITIC_OUTPUT_GAIN)

    @property
    def hidden_linear(self) -> nn.Linear:
        """The critic hidden ``nn.Linear`` (a property: an attribute would duplicate its state-dict key)."""
        if isinstance(self.hidden, ResidualLinear):
            return self.hidden.linear
        assert isinstance(self.hidden, nn.Sequential)
        layer = self.hidden[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.hidden(x)
        return self.value_ext(h).squeeze(-1), self.value_int(h).squeeze(-1)


class SelfAttention(nn.Module):
    """Single-head self-attention with a residual: x + softmax(QKᵀ/√d) V (model D, method.md §2.4).

    The diagram ([RL-DIAG] attentiona/b.png) shows Q, K, V linear 128→128, a 144x144 softmax attention matrix
    and a 144x128 output, but no scaling, normalisation or output projection. Choices (unverified): the
    standard 1/√d scaling (keeps the logits' scale independent of the width), no LayerNorm and no output
    projection (neither is drawn), and Q/K/V initialised like the other encoder layers (orthogonal √2, zero
    bias).
    With these choices the first block's attention logits have std ≈ 0.4 at init on uniform [0, 1] frames
    (measured), so attention starts near-uniform rather than saturated; hence no normalisation is added.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = layer_init(nn.Linear(dim, dim), SQRT2)
        self.key = layer_init(nn.Linear(dim, dim), SQRT2)
        self.value = layer_init(nn.Linear(dim, dim), SQRT2)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, T, dim)
        # scaled_dot_product_attention's default scale is 1/sqrt(dim); it uses a fused kernel where available.
        attended = F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x))
        return x + attended


class ResidualPointwise(nn.Module):
    """x + ReLU(W x + b) applied per token: the diagram's "residual 1x1 conv 128" (method.md §2.4).

    A 1x1 convolution over the token grid is exactly a per-token linear map, so it is written as ``nn.Linear``
    on (B, T, C) tokens (same weights, no reshapes). Where the ReLU sits is not drawn (unverified); putting it
    on the branch keeps the identity path linear, like the attention residual.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = layer_init(nn.Linear(dim, dim), SQRT2)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.relu(self.linear(x))


class AttentionEncoder(nn.Module):
    """Model D features: 8x8/8 patch conv → tokens → [attention → residual 1x1] x 2 → flatten → FC → ReLU.

    No positional embedding is added (unverified; none is drawn): token order survives the flatten, so the
    FC 512 after the attention blocks has a separate weight for every grid position and the heads are position
    aware; only the attention mixing itself is content-based, and the 8x8/8 conv features already encode what
    each patch shows.
    """

    def __init__(self, obs_shape: tuple[int, int, int], channels: int = 128, hidden: int = 512) -> None:
        super().__init__()
        c, h, w = obs_shape
        self.patch = layer_init(nn.Conv2d(c, channels, kernel_size=8, stride=8), SQRT2)
        self.attention1 = SelfAttention(channels)
        self.pointwise1 = ResidualPointwise(channels)
        self.attention2 = SelfAttention(channels)
        self.pointwise2 = ResidualPointwise(channels)
        tokens = conv_out(h, 8, 8) * conv_out(w, 8, 8)
        self.fc = layer_init(nn.Linear(tokens * channels, hidden), SQRT2)

    def forward(self, obs: Tensor) -> Tensor:
        x = F.relu(self.patch(obs))  # (B, C, H/8, W/8)
        x = x.flatten(2).transpose(1, 2)  # (B, T, C), tokens in row-major grid order
        x = self.pointwise1(self.attention1(x))
        x = self.pointwise2(self.attention2(x))
        return F.relu(self.fc(x.flatten(1)))


class PolicyNet(nn.Module):
    """features → (actor logits, critic V_ext, V_int). Build through :func:`build_policy`."""

    def __init__(
        self,
        name: str,
        obs_shape: tuple[int, int, int],
        num_actions: int,
        features: nn.Module,
        actor: Actor,
        critic: Critic,
    ) -> None:
        super().__init__()
        self.name = name
        self.obs_shape = obs_shape
        self.num_actions = num_actions
        self.features = features
        self.actor = actor
        self.critic = critic

    def forward(self, obs: Tensor) -> PolicyOutput:
        f = self.features(obs)
        value_ext, value_int = self.critic(f)
        return PolicyOutput(self.actor(f), value_ext, value_int)

    def layers_by_role(self) -> dict[str, list[nn.Module]]:
        """Every weight layer grouped by its init role (used by tests and for logging init gains)."""
        return {
            "features": [m for m in self.features.modules() if isinstance(m, (nn.Linear, nn.Conv2d))],
            "actor_hidden": [self.actor.hidden],
            "actor_output": [self.actor.output],
            "critic_hidden": [self.critic.hidden_linear],
            "critic_output": [self.critic.value_ext, self.critic.value_int],
        }


def _conv_stack(
    obs_shape: tuple[int, int, int], specs: list[tuple[int, int, int, int]], hidden: int
) -> tuple[nn.Sequential, int]:
    """Conv layers (out_ch, kernel, stride, padding) → flatten → FC ``hidden``; ReLU after each, gain √2."""
    channels, side, _ = obs_shape
    layers: list[nn.Module] = []
    for out_ch, kernel, stride, padding in specs:
        layers += [layer_init(nn.Conv2d(channels, out_ch, kernel, stride, padding), SQRT2), nn.ReLU()]
        channels, side = out_ch, conv_out(side, kernel, stride, padding)
    layers += [nn.Flatten(), layer_init(nn.Linear(channels * side * side, hidden), SQRT2), nn.ReLU()]
    return nn.Sequential(*layers), hidden


def _model_a(obs_shape: tuple[int, int, int], num_actions: int, critic_gain: float) -> PolicyNet:
    """Model A (method.md §2.1, author ``ppo_rnd_0_0``): conv 8x8/32/s4 p2 → 3x3/64/s2 p1 → 3x3/64/s1 p1 →
    FC 448 → FC 448 (ReLU each); critic residual FC 448 → 2 heads; actor FC 448 → ReLU → FC n."""
    trunk, dim = _conv_stack(obs_shape, [(32, 8, 4, 2), (64, 3, 2, 1), (64, 3, 1, 1)], 448)
    features = nn.Sequential(*trunk, layer_init(nn.Linear(dim, 448), SQRT2), nn.ReLU())
    return PolicyNet(
        "A",
        obs_shape,
        num_actions,
        features,
        Actor(448, 448, num_actions),
        Critic(448, 448, critic_gain, True),
    )


def _model_b(obs_shape: tuple[int, int, int], num_actions: int, critic_gain: float) -> PolicyNet:
    """Model B (method.md §2.2, diagram only): conv 8x8/64/s4 → 3x3/64/s2 → 3x3/128/s1 → FC 800; critic FC 800
    → 2 heads; actor FC 800 → FC n.

    Unverified choices: paddings 2/1/1 as in model A (gives the same 12x12 grid at 96x96), ReLU after every
    layer and in both heads' hidden layers (the seed's "ReLU in PPO nets"), plain (non-residual) critic hidden
    layer.
    """
    features, dim = _conv_stack(obs_shape, [(64, 8, 4, 2), (64, 3, 2, 1), (128, 3, 1, 1)], 800)
    return PolicyNet(
        "B",
        obs_shape,
        num_actions,
        features,
        Actor(dim, 800, num_actions),
        Critic(dim, 800, critic_gain, False),
    )


def _model_c(obs_shape: tuple[int, int, int], num_actions: int, critic_gain: float) -> PolicyNet:
    """Model C (method.md §2.3, author ``ppo_rnd_1_0``): conv 3x3 32/64/64/128, strides 2,2,2,1, padding 1 →
    FC 512, ReLU after every layer incl. FC 512; critic FC 512 + ReLU → 2 heads; actor FC 512 + ReLU → FC n.

    The [SND] paper-code variant (linear FC 512, actor with an extra leading ReLU) is not built here.
    """
    features, dim = _conv_stack(obs_shape, [(32, 3, 2, 1), (64, 3, 2, 1), (64, 3, 2, 1), (128, 3, 1, 1)], 512)
    return PolicyNet(
        "C",
        obs_shape,
        num_actions,
        features,
        Actor(dim, 512, num_actions),
        Critic(dim, 512, critic_gain, False),
    )


def _model_d(obs_shape: tuple[int, int, int], num_actions: int, critic_gain: float) -> PolicyNet:
    """Model D (method.md §2.4, diagram only): see :class:`AttentionEncoder`; critic FC 512 + ReLU → 2 heads;
    actor FC 512 + ReLU → FC n."""
    features = AttentionEncoder(obs_shape, channels=128, hidden=512)
    return PolicyNet(
        "D",
        obs_shape,
        num_actions,
        features,
        Actor(512, 512, num_actions),
        Critic(512, 512, critic_gain, False),
    )


PolicyBuilder = Callable[[tuple[int, int, int], int, float], PolicyNet]

# The policy registry: name -> builder. A builder that checks its own frame (the Nature CNN takes 84x84, not a
# multiple of 8) is registered with ``own_frame_check``; the others get check_square_frame.
_BUILDERS: dict[str, PolicyBuilder] = {"A": _model_a, "B": _model_b, "C": _model_c, "D": _model_d}
_OWN_FRAME_CHECK: set[str] = set()


def register_policy(name: str, builder: PolicyBuilder, own_frame_check: bool = False) -> None:
    """Add a policy model to :func:`build_policy` (``model.name`` must also allow it: rlsweep.config.schema)."""
    _BUILDERS[name] = builder
    if own_frame_check:
        _OWN_FRAME_CHECK.add(name)


def model_names() -> tuple[str, ...]:
    """The policy models :func:`build_policy` builds, in registration order."""
    return tuple(_BUILDERS)


def build_policy(name: str, obs_shape: tuple[int, int, int], num_actions: int, critic_init_gain: float) -> PolicyNet:
    """Build PPO model ``name`` ("A".."D") for (C, H, W) observations and ``num_actions`` discrete actions.

    ``critic_init_gain`` is the orthogonal gain of the critic hidden layer only (0.1 in the seed, √2 in
    variants b1/b3/c1, method.md §3.2); every other gain is fixed by the seed.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown policy model {name!r}; allowed names: {', '.join(model_names())}")
    if num_actions < 1:
        raise ValueError(f"num_actions must be >= 1, got {num_actions}")
    if not (math.isfinite(critic_init_gain) and critic_init_gain > 0):
        raise ValueError(f"critic_init_gain must be a positive finite number, got {critic_init_gain}")
    obs_shape = (int(obs_shape[0]), int(obs_shape[1]), int(obs_shape[2]))
    if name not in _OWN_FRAME_CHECK:
        check_square_frame(obs_shape)
    return _BUILDERS[name](obs_shape, num_actions, critic_init_gain)


__all__ = ["PolicyNet", "PolicyOutput", "build_policy", "model_names", "register_policy"]
