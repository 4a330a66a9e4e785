"""Neural networks of rlsweep: PPO actor-critics A-D and the RND/SND distillation networks (method.md §2).

Everything else builds models through :func:`build_policy` and :func:`build_distillation_nets`.
"""

from rlsweep.models.distillation import DISTILLATION_ARCHS, DistillationNet, build_distillation_nets
from rlsweep.models.layers import SQRT2, layer_init
from rlsweep.models.policy import MODEL_NAMES, PolicyNet, PolicyOutput, build_policy

__all__ = [
    "DISTILLATION_ARCHS",
    "MODEL_NAMES",
    "SQRT2",
    "DistillationNet",
    "PolicyNet",
    "PolicyOutput",
    "build_distillation_nets",
    "build_policy",
    "layer_init",
]
