"""Tolerances derived from the arithmetic they cover (tests import it: ``from tolerance import rounding``).

A tolerance tuned on one CPU fails on another: AVX-512, AVX2 and the plain kernels
(``ATEN_CPU_CAPABILITY=default``) sum in different orders. So every tolerance in tests/ follows one of these rules,
with a comment at the comparison saying how:

1. Equal up to rounding. Each correctly rounded float operation is off by at most half an epsilon, relative; the
   epsilon is the gap between 1 and the next number (2**-23 for float32, 2**-52 for float64, 2**-7 for bfloat16).
   ``rounding(dtype, depth, scale)`` allows ``depth`` roundings of a whole epsilon each (twice the worst case),
   relative to ``scale``, the size of the numbers the computation goes through. The depth counts roundings on
   the longest chain. A sum of n terms added in another order (a batched kernel, another SIMD width) can differ by
   up to n roundings relative to the terms' magnitudes; sqrt(n) is typical, n is the worst case.
2. Exact values (worked out by hand or with the formulas in plain Python) are computed in float64, and compared
   with a float64 bound from their depth.
3. Bit-for-bit claims (the same kernels on the same inputs in the same order) stay exact: ``==`` or ``rtol=0,
   atol=0``.
4. Sampling checks allow ``sampling(std, draws)``: 5 standard errors of the mean of ``draws`` independent draws
   (a Gaussian mean falls outside 5 standard errors with probability 6e-7). The draws are seeded, so such a test
   cannot flicker; 5 standard errors keep it passing on any generator that is right.
5. Whole training runs compared up to rounding have no epsilon-times-depth bound: Adam turns rounding noise in a
   near-zero gradient into a step of about the learning rate, and a ReLU flips where an input is near zero. Their
   tolerances are measured: the largest difference seen under ``ATEN_CPU_CAPABILITY=default``, ``avx2`` (and
   AVX-512 where known), in epsilons, times a safety factor that is said at the test, and still well below what a
   real bug (another seed's numbers, a wrong row, a wrong formula) changes.

Every bound is checked against the size of a real error: it must stay far below it, so the test still fails then.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The gap between 1 and the next representable number of each dtype.
FLOAT32_EPS = torch.finfo(torch.float32).eps  # 2**-23, about 1.2e-7
FLOAT64_EPS = torch.finfo(torch.float64).eps  # 2**-52, about 2.2e-16
BFLOAT16_EPS = torch.finfo(torch.bfloat16).eps  # 2**-7 (8 bits of mantissa), about 7.8e-3


# Rule 5 for runs of a few iterations (4 at most here) whose only difference is the order of float32 sums (a seed's
# grouped kernels against its lone run's, a target pass batched or chunked otherwise). Measured, as the relative
# drift of the runs' ratio-like numbers (a loss; an explained variance's var(R - V) / var(R)), tests/integration/
# test_seeds_per_process.py over its 4 motivations: 31 epsilons with ATEN_CPU_CAPABILITY=default, 16 with avx2, 35
# on an AVX-512 CPU (explained_var_int -0.5897989 against -0.5898055: 6.6e-6 on a ratio of 1.59); the 2-iteration
# runs of tests/integration/test_training.py: none (equal to the bit) with both. Allowed: 1024 epsilons, about 30
# times the largest drift seen, for kernels not measured (other SIMD widths, oneDNN versions, AMX). A run that differs
# for a real reason differs by 1e-3 or more: the 4-iteration runs with a learning rate 1 % larger differ by 4e-2
# (RND) and 0.26 (SND-STD) relative.
RUN_DRIFT = 1024 * FLOAT32_EPS


def eps(dtype: torch.dtype | type | np.dtype) -> float:
    """The epsilon of a torch or numpy floating dtype (``torch.float32``, ``np.float64``, ``float``)."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def rounding(dtype: torch.dtype | type | np.dtype, depth: float, scale: float = 1.0) -> float:
    """The error of ``depth`` roundings of one epsilon each, relative to ``scale`` (rule 1).

    Used as a relative tolerance with ``scale`` 1, or as an absolute one with ``scale`` the size of the numbers.
    """
    return depth * eps(dtype) * scale


def reordered_depth(*modules: torch.nn.Module) -> int:
    """The roundings by which a forward pass through ``modules`` may differ when every layer sums its products in
    another order (another kernel, layout, batch size or grouping): each output of a layer of fan-in n is a sum of
    n products, n roundings at worst; the layers' counts add up (all layers counted, parallel heads included, so an
    upper bound on the longest chain). Relative to the size of the outputs (rule 1)."""
    layers = (m for net in modules for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    return sum(layer.weight[0].numel() for layer in layers)


def gradient_depth(*nets: torch.nn.Module, rows_positions: int) -> int:
    """Roundings by which a gradient may differ when every sum runs in another order, relative to the size of its
    tensor: the forward pass to the loss (reordered_depth), the backward pass through the same layers again, and the
    weight gradients' sums over rows x output positions (``rows_positions``, the largest such count)."""
    return 2 * reordered_depth(*nets) + rows_positions


def adam_atol(steps: int, grad_depth: int, lr: float) -> float:
    """How far ``steps`` Adam steps may move a parameter apart when its gradients are ``grad_depth`` roundings apart:
    a step is at most 3.2 lr ((1 - beta1) / sqrt(1 - beta2) bounds the bias-corrected m / sqrt(v)), off by ~14
    roundings of its own arithmetic plus the gradients' relative error, per step. The rounding of p - step is relative
    to p (an rtol of one rounding per step). A gradient that is pure rounding noise could flip a step by 2 lr: rule 5
    then, not this. Training on other data moves a parameter by about lr per step."""
    return rounding(torch.float32, depth=steps * (14 + grad_depth), scale=3.2 * lr)


def sampling(std: float, draws: int, z: float = 5.0) -> float:
    """``z`` standard errors of the mean of ``draws`` independent draws whose standard deviation is ``std`` (rule 4)."""
    return z * std / math.sqrt(draws)
