"""CleanRL's ``ppo_rnd_envpool.py`` networks, rebuilt from their architecture for like-for-like comparisons.

``model=cleanrl`` and ``motivation.network=cleanrl`` (``experiment=cleanrl_rnd`` sets both, with CleanRL's
84x84 observation and its hyperparameters) give the layer shapes, activations and initialisation of CleanRL's
``Agent`` and ``RNDModel``, so that ``benchmarks/vs_cleanrl.py`` can run the same work in both code bases.
Written here from the architecture (the Nature CNN plus the heads below), not copied.

Policy (``Agent``), on 4 stacked 84x84 grey frames scaled to [0, 1]:

* trunk ``features``: conv 32 8x8/4 → conv 64 4x4/2 → conv 64 3x3/1 (no padding, ReLU each; 84 → 20 → 9 → 7)
  → flatten 64·7·7 = 3136 → FC 256 → ReLU → FC 448 → ReLU; orthogonal gain √2;
* actor: FC 448 (gain 0.01) → ReLU → FC n_actions (gain 0.01), on the trunk output;
* critic: an extra FC 448 (gain ``critic_init_gain``; CleanRL's 0.1) → ReLU, whose output is *added* to the
  trunk output, x + ReLU(W x + b), then two 1-unit heads V_ext, V_int (gain 0.01). All biases zero.

RND (``RNDModel``), on the newest frame (1x84x84, normalised by the caller): the same three convs with
leaky ReLU (slope 0.01) → flatten 3136; the target ends in one FC 512, the predictor in FC 512 → ReLU →
FC 512 → ReLU → FC 512. Orthogonal gain √2 everywhere, biases zero; the target is frozen by the motivation.
"""

from __future__ import annotations

from torch import Tensor, nn

from rlsweep.models.distillation import DistillationNet, predictor_head, register_distillation, target_head
from rlsweep.models.layers import SQRT2, conv_out, layer_init
from rlsweep.models.policy import Actor, Critic, PolicyNet, register_policy

#: The Nature CNN: (out_channels, kernel, stride), no padding.
NATURE_CONVS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
TRUNK_FC = 256  # CleanRL: Linear(64*7*7, 256)
HIDDEN = 448  # CleanRL: Linear(256, 448), the actor's and the extra critic layer's width
RND_FEATURES = 512  # CleanRL: RNDModel output size
MIN_SIDE = 36  # the smallest square frame the three convs leave at least one pixel of (36 → 8 → 3 → 1)


def check_frame(shape: tuple[int, int, int]) -> None:
    """A square (C, H, W) frame with a side of at least 36 (CleanRL's is 84)."""
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < MIN_SIDE:
        raise ValueError(f"the cleanrl networks need a square (C, H, W) frame with a side >= {MIN_SIDE}, got {shape}")


def nature_convs(in_channels: int, side: int, activation: type[nn.Module]) -> tuple[list[nn.Module], int]:
    """The three Nature-CNN convs (gain √2) with ``activation`` after each and a flatten; returns the flat size."""
    layers: list[nn.Module] = []
    channels = in_channels
    for out_ch, kernel, stride in NATURE_CONVS:
        layers += [layer_init(nn.Conv2d(channels, out_ch, kernel, stride), SQRT2), activation()]
        channels, side = out_ch, conv_out(side, kernel, stride)
    layers.append(nn.Flatten())
    return layers, channels * side * side


class AddedCritic(Critic):
    """CleanRL's critic: the heads read x + ReLU(W x + b) (its ``extra_layer`` output plus the trunk output).

    Same parameters and init as :class:`~rlsweep.models.policy.Critic` with a plain FC → ReLU hidden layer; only
    the skip connection differs (model A's ``ResidualLinear`` adds the pre-activation instead).
    """

    def __init__(self, in_features: int, hidden_gain: float) -> None:
        super().__init__(in_features, in_features, hidden_gain, residual=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = x + self.hidden(x)
        return self.value_ext(h).squeeze(-1), self.value_int(h).squeeze(-1)


def build_cleanrl_policy(obs_shape: tuple[int, int, int], num_actions: int, critic_gain: float) -> PolicyNet:
    """CleanRL's ``Agent`` (see the module docstring) for (C, H, W) observations."""
    check_frame(obs_shape)
    convs, flat = nature_convs(obs_shape[0], obs_shape[1], nn.ReLU)
    features = nn.Sequential(
        *convs,
        layer_init(nn.Linear(flat, TRUNK_FC), SQRT2),
        nn.ReLU(),
        layer_init(nn.Linear(TRUNK_FC, HIDDEN), SQRT2),
        nn.ReLU(),
    )
    return PolicyNet(
        "cleanrl",
        obs_shape,
        num_actions,
        features,
        Actor(HIDDEN, HIDDEN, num_actions),
        AddedCritic(HIDDEN, critic_gain),
    )


def build_cleanrl_rnd_nets(
    in_shape: tuple[int, int, int], feature_dim: int = RND_FEATURES
) -> tuple[DistillationNet, DistillationNet]:
    """CleanRL's ``RNDModel`` as ``(target, predictor)`` on (1, H, W) frames (see the module docstring)."""
    check_frame(in_shape)
    target_convs, flat = nature_convs(in_shape[0], in_shape[1], nn.LeakyReLU)
    target = DistillationNet(nn.Sequential(*target_convs), target_head(flat, feature_dim, SQRT2))
    predictor_convs, _ = nature_convs(in_shape[0], in_shape[1], nn.LeakyReLU)
    predictor = DistillationNet(nn.Sequential(*predictor_convs), predictor_head(flat, feature_dim, SQRT2, nn.ReLU))
    return target, predictor


register_policy("cleanrl", build_cleanrl_policy, own_frame_check=True)  # the Nature CNN takes 84x84 frames
register_distillation("cleanrl", build_cleanrl_rnd_nets)

__all__ = ["AddedCritic", "build_cleanrl_policy", "build_cleanrl_rnd_nets"]
