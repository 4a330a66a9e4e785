"""Neural networks of rlsweep: PPO actor-critics A-D and the RND/SND distillation networks (method.md §2).

Everything else builds models through :func:`build_policy` and :func:`build_distillation_nets`. Each has a registry:
a module with more networks registers them (:func:`rlsweep.models.policy.register_policy`,
:func:`rlsweep.models.distillation.register_distillation`) and is imported here, as :mod:`rlsweep.models.cleanrl`
is; the names must also be in the config schema, which validates without torch.
"""

from rlsweep.config import schema
from rlsweep.models import cleanrl  # noqa: F401  (registers the "cleanrl" policy and distillation nets)
from rlsweep.models.distillation import DistillationNet, build_distillation_nets, distillation_archs
from rlsweep.models.layers import SQRT2, layer_init
from rlsweep.models.policy import PolicyNet, PolicyOutput, build_policy, model_names

MODEL_NAMES = model_names()
DISTILLATION_ARCHS = distillation_archs()

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
