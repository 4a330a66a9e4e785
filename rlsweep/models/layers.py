"""Small building blocks shared by the PPO and distillation networks: initialisation and shape arithmetic.

Owns the one initialisation rule every network in method.md §2 uses (orthogonal weights with a per-role gain,
constant -- in practice zero -- biases) and the convolution output-size formula, so the flatten size of each
model is computed from the observation shape instead of being hard-coded for 96x96 frames.
"""

from __future__ import annotations

import math
from typing import TypeVar

from torch import nn

#: Gain for ReLU/ELU feature layers (method.md §2: "features gain √2").
SQRT2: float = math.sqrt(2.0)

_LayerT = TypeVar("_LayerT", bound=nn.Module)


def layer_init(layer: _LayerT, gain: float, bias: float = 0.0) -> _LayerT:
    """Orthogonal weight init with ``gain`` and constant ``bias``; returns ``layer`` so it can wrap a
    constructor.

    Conv kernels are treated as (out, in·kh·kw) matrices by :func:`torch.nn.init.orthogonal_`, so every
    singular value of that matrix equals ``gain`` when out <= in (otherwise the columns are orthonormal·gain).
    """
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise TypeError(f"layer_init needs a layer with a weight parameter, got {type(layer).__name__}")
    nn.init.orthogonal_(weight, gain)
    layer_bias = getattr(layer, "bias", None)
    if isinstance(layer_bias, nn.Parameter):
        nn.init.constant_(layer_bias, bias)
    return layer


def conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output side length of a convolution (the PyTorch formula, dilation 1)."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"input side {size} too small for kernel {kernel}, stride {stride}, padding {padding}")
    return out


def check_square_frame(shape: tuple[int, int, int], min_side: int = 16, multiple: int = 8) -> None:
    """Reject frames the models are not designed for (non-square, side not a multiple of 8, or < 16).

    Every architecture in method.md §2 downsamples by 8 overall (model D's patch conv needs exact tiling), so
    a side that is not a multiple of 8 would silently drop border pixels.
    """
    if len(shape) != 3:
        raise ValueError(f"expected a (C, H, W) shape, got {shape}")
    _, height, width = shape
    if height != width or height % multiple != 0 or height < min_side:
        raise ValueError(
            f"expected a square frame whose side is a multiple of {multiple} and >= {min_side}, got {shape}"
        )
