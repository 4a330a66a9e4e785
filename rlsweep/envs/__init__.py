"""Environments: every backend behind the :mod:`rlsweep.envs.base` contract, one registry of env families.

The families, each declared once in its own module (:mod:`rlsweep.envs.family` says what a declaration holds):
the synthetic test envs ``fake``, ``maze`` and ``chain`` (:mod:`rlsweep.envs.synthetic`), envpool Atari
(:mod:`rlsweep.envs.atari`, ``*-v5``), envpool Procgen (:mod:`rlsweep.envs.procgen`, ``procgen-<game>``) and MiniGrid
(:mod:`rlsweep.envs.minigrid`, ``MiniGrid-*``).
A new family is a module that declares its ``FAMILY`` and that name in the tuple below (docs/architecture.md).
envpool and minigrid are imported lazily, so the synthetic envs work (and import fast) without touching an emulator.
"""

from __future__ import annotations

from typing import Any

from rlsweep.envs import atari, minigrid, procgen, synthetic
from rlsweep.envs.base import EpisodeInfo, StepResult, VecEnv
from rlsweep.envs.family import (
    FAMILIES,
    EnvFamily,
    check_env,
    env_settings,
    family_of,
    known_env_ids,
    known_family,
    register_env_family,
)

__all__ = [
    "FAMILIES",
    "SYNTHETIC_IDS",
    "EnvFamily",
    "EpisodeInfo",
    "StepResult",
    "VecEnv",
    "atari",
    "check_env",
    "family_of",
    "known_env_ids",
    "make_env",
    "minigrid",
    "procgen",
    "synthetic",
]

# Each backend module declares its FAMILY; the order here is the order of `--info` and of messages.
for _family in (synthetic.FAMILY, atari.FAMILY, procgen.FAMILY, minigrid.FAMILY):
    register_env_family(_family)

SYNTHETIC_IDS = synthetic.SYNTHETIC_IDS


def make_env(cfg: Any, num_envs: int, seed: int) -> VecEnv:
    """Build ``num_envs`` vectorised envs of ``cfg.id`` seeded with ``seed``, through the family that owns the id.

    ``cfg`` is the ``env`` section (an OmegaConf DictConfig, the ``EnvConfig`` dataclass, or a namespace with only
    some fields: the others take the schema's defaults). Raises ValueError for an id no family knows.
    """
    env = env_settings(cfg)
    return known_family(env.id).build(env, num_envs, seed)
