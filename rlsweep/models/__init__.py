"""Neural networks of rlsweep: PPO actor-critics A-D and the RND/SND distillation networks (method.md §2).

Everything else builds models through :func:`build_policy` and :func:`build_distillation_nets`.
"""

from rlsweep.config import schema
from rlsweep.models.distillation import DISTILLATION_ARCHS, DistillationNet, build_distillation_nets
from rlsweep.models.layers import SQRT2, layer_init
from rlsweep.models.policy import MODEL_NAMES, PolicyNet, PolicyOutput, build_policy

# The config schema owns the names (validation runs without torch); the builders here must build exactly them.
if MODEL_NAMES != schema.MODEL_NAMES or DISTILLATION_ARCHS != schema.DISTILLATION_NETWORKS:
    raise ImportError(
        f"rlsweep.models builds policies {MODEL_NAMES} and distillation nets {DISTILLATION_ARCHS}, but the config "
        f"schema allows model.name {schema.MODEL_NAMES} and motivation.network {schema.DISTILLATION_NETWORKS}"
    )

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
