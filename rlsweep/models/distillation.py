"""Target and predictor networks for RND and SND (method.md §2.5 RND models, §2.6 SND/CND target and
predictor).

Owns the two network shapes the seed uses on a single (1, H, W) frame -- channel "0" of the seed's stack, i.e.
the newest frame, which rlsweep's envs store as the *last* channel (see ``rlsweep.envs.base``) -- and their
initialisation (orthogonal √2, zero biases, ELU: "ReLU or leaky ReLU doesn't work", [RL-README]).

* arch "a" (model-A-era RND, ``ppo_rnd_0_x`` and [SND] ``RNDModelAtari``): conv 8x8/32/s4 p2 → 3x3/64/s2 p1 →
  3x3/64/s1 p1.
* arch "c" (model-C-era RND ``ppo_rnd_1_x`` and the SND-V target/predictor ``ppo_cnd_21``): conv 3x3
  16/32/64/64, strides 2,2,2,1, padding 1.
* arch "std" (the SND paper's ``ST_DIM_CNN`` target of SND-STD and its predictor ``STDModelAtari``): conv 3x3
  32/64/64/128, strides 2,2,2,1, **ReLU**, every layer orthogonal with gain **0.5** (the paper's choice; it keeps
  the InfoNCE logits small at the start).
* arch "vic" (SND-VIC, [SND] ``VICRegModelAtari``): the same ST-DIM target (gain 0.5); the predictor keeps gain
  √2. The paper's VICReg predictor is a larger encoder with a GELU projection head; here it is the ST-DIM-shaped
  predictor of method.md §2.6, so that every variant has one predictor shape per conv stack.

After the convs (activation after each) and a flatten, the target is one linear FC ``feature_dim`` and the
predictor is FC → ELU → FC → ELU → FC ("trained model needs to be deeper"). The caller normalises the input and
decides which parameters train: the RND target is frozen by the RND motivation, the SND target is trained by the
SND one, so nothing here touches ``requires_grad``. ``DistillationNet.forward_with_map`` also returns an
intermediate conv map, which the ST-DIM loss compares between consecutive states.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rlsweep.models.layers import SQRT2, check_square_frame, conv_out, layer_init

_ST_DIM_CONVS = [(32, 3, 2, 1), (64, 3, 2, 1), (64, 3, 2, 1), (128, 3, 1, 1)]

#: (out_channels, kernel, stride, padding) per conv layer.
_CONV_SPECS: dict[str, list[tuple[int, int, int, int]]] = {
    "a": [(32, 8, 4, 2), (64, 3, 2, 1), (64, 3, 1, 1)],
    "c": [(16, 3, 2, 1), (32, 3, 2, 1), (64, 3, 2, 1), (64, 3, 1, 1)],
    "std": _ST_DIM_CONVS,
    "vic": _ST_DIM_CONVS,
}
#: Activation after each conv: ELU in the author's nets ("ReLU or leaky ReLU doesn't work"), ReLU in ST_DIM_CNN.
_CONV_ACTIVATION: dict[str, type[nn.Module]] = {"a": nn.ELU, "c": nn.ELU, "std": nn.ReLU, "vic": nn.ReLU}
#: Orthogonal gains (target, predictor) per arch.
_GAINS: dict[str, tuple[float, float]] = {
    "a": (SQRT2, SQRT2),
    "c": (SQRT2, SQRT2),
    "std": (0.5, 0.5),
    "vic": (0.5, SQRT2),
}


class DistillationNet(nn.Module):
    """``encoder`` (convs + ELU + flatten) → ``head`` (FC layers); maps (B, 1, H, W) to (B, feature_dim)."""

    def __init__(self, encoder: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    def forward_with_map(self, x: Tensor, conv_index: int) -> tuple[Tensor, Tensor]:
        """``(features, map)``: the output and the activated output of conv ``conv_index`` (0-based), (B, C, h, w)."""
        seen = -1
        fmap: Tensor | None = None
        h = x
        for module in self.encoder:
            h = module(h)
            if isinstance(module, nn.Conv2d):
                seen += 1
            elif seen == conv_index and fmap is None and not isinstance(module, nn.Flatten):
                fmap = h  # the activation right after the wanted conv closes that layer
        if fmap is None:
            raise ValueError(f"conv_index {conv_index} out of range for {len(self.conv_layers())} conv layers")
        return self.head(h), fmap

    def linear_layers(self) -> list[nn.Linear]:
        """The FC layers after the convs, in order (1 for a target, 3 for a predictor)."""
        return [m for m in self.head if isinstance(m, nn.Linear)]

    def conv_layers(self) -> list[nn.Conv2d]:
        return [m for m in self.encoder if isinstance(m, nn.Conv2d)]


def _encoder(arch: str, in_shape: tuple[int, int, int], gain: float) -> tuple[nn.Sequential, int]:
    channels, side, _ = in_shape
    layers: list[nn.Module] = []
    for out_ch, kernel, stride, padding in _CONV_SPECS[arch]:
        layers += [layer_init(nn.Conv2d(channels, out_ch, kernel, stride, padding), gain), _CONV_ACTIVATION[arch]()]
        channels, side = out_ch, conv_out(side, kernel, stride, padding)
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * side * side


def _coupled_orthogonal_(first: Tensor, second: Tensor, gain: float) -> None:
    """Draw one orthogonal matrix with twice the rows of ``first`` and split it row-wise between the two.

    This is the author's model-C-era RND "coupled init" (method.md §2.5): when 2·out <= fan-in, the
    predictor's rows are orthogonal to the target's, so the predictor starts as far as possible from the
    target it must imitate while each half keeps all singular values = ``gain``. When 2·out > fan-in (e.g. the
    first 3x3 conv on one channel: 32 rows, fan-in 9) only the columns of the stacked matrix can be
    orthonormal, and each half is then a (non-orthogonal) slice of it -- the closest faithful reading, since
    the source code is lost.
    """
    if first.shape != second.shape:
        raise ValueError(f"coupled init needs equal shapes, got {tuple(first.shape)} and {tuple(second.shape)}")
    stacked = torch.empty((2 * first.shape[0], *first.shape[1:]), dtype=first.dtype)
    nn.init.orthogonal_(stacked, gain)
    rows = first.shape[0]
    with torch.no_grad():
        first.copy_(stacked[:rows])
        second.copy_(stacked[rows:])


def target_head(flat: int, feature_dim: int, gain: float) -> nn.Sequential:
    """RND's target head: one FC from the encoder's flat features to the feature space."""
    return nn.Sequential(layer_init(nn.Linear(flat, feature_dim), gain))


def predictor_head(flat: int, feature_dim: int, gain: float, activation: type[nn.Module]) -> nn.Sequential:
    """RND's predictor head: the target's FC and two more of the feature width, ``activation`` between them."""
    return nn.Sequential(
        layer_init(nn.Linear(flat, feature_dim), gain),
        activation(),
        layer_init(nn.Linear(feature_dim, feature_dim), gain),
        activation(),
        layer_init(nn.Linear(feature_dim, feature_dim), gain),
    )


DistillationBuilder = Callable[[tuple[int, int, int], int], tuple[DistillationNet, DistillationNet]]
# Architectures built by another module than this one's conv specs: name -> builder of (target, predictor).
_OTHER_ARCHS: dict[str, DistillationBuilder] = {}


def register_distillation(name: str, builder: DistillationBuilder) -> None:
    """Add a distillation architecture to :func:`build_distillation_nets` (``motivation.network`` must also
    allow it: rlsweep.config.schema)."""
    _OTHER_ARCHS[name] = builder


def distillation_archs() -> tuple[str, ...]:
    """The architectures :func:`build_distillation_nets` builds: the conv specs', then the registered ones."""
    return (*_CONV_SPECS, *_OTHER_ARCHS)


def build_distillation_nets(
    arch: str, in_shape: tuple[int, int, int], feature_dim: int = 512, coupled_init: bool = False
) -> tuple[DistillationNet, DistillationNet]:
    """Return ``(target, predictor)`` for ``arch`` (one of DISTILLATION_ARCHS) reading float (B, *in_shape) frames.

    ``coupled_init=True`` re-initialises every layer the two nets share in shape (the convs and the first FC)
    with :func:`_coupled_orthogonal_` (predictor takes the first half of the rows, target the second); the
    predictor's extra FC layers keep their independent orthogonal √2 init. Biases stay zero.
    """
    if arch in _OTHER_ARCHS:  # registered (rlsweep.models.cleanrl: CleanRL's RNDModel)
        if coupled_init:
            raise ValueError(f"coupled_init is not offered for the {arch} distillation nets")
        return _OTHER_ARCHS[arch]((int(in_shape[0]), int(in_shape[1]), int(in_shape[2])), feature_dim)
    if arch not in _CONV_SPECS:
        raise ValueError(f"unknown distillation arch {arch!r}; allowed archs: {', '.join(distillation_archs())}")
    if feature_dim < 1:
        raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
    in_shape = (int(in_shape[0]), int(in_shape[1]), int(in_shape[2]))
    check_square_frame(in_shape)

    target_gain, predictor_gain = _GAINS[arch]
    target_encoder, flat = _encoder(arch, in_shape, target_gain)
    target = DistillationNet(target_encoder, target_head(flat, feature_dim, target_gain))
    predictor_encoder, _ = _encoder(arch, in_shape, predictor_gain)
    predictor = DistillationNet(predictor_encoder, predictor_head(flat, feature_dim, predictor_gain, nn.ELU))

    if coupled_init:
        if target_gain != predictor_gain:
            raise ValueError(f"coupled_init needs equal target and predictor gains; arch {arch!r} has none")
        shared_pairs: list[tuple[nn.Conv2d | nn.Linear, nn.Conv2d | nn.Linear]] = [
            *zip(predictor.conv_layers(), target.conv_layers(), strict=True),
            (predictor.linear_layers()[0], target.linear_layers()[0]),
        ]
        for pred_layer, target_layer in shared_pairs:
            _coupled_orthogonal_(pred_layer.weight, target_layer.weight, target_gain)
    return target, predictor
