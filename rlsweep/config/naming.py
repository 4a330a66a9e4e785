"""Stable, readable run names from the group choices.

A grid point that is one of the seed's presets is named after it (model=B normalise_int_reward=false
critic_init=sqrt2 motivation=rnd is ``ppo_rnd_b1``); any other point gets a canonical name built from the
choices that define it. Value overrides outside the groups (``ppo.learning_rate=3e-4``) are appended, so two
grid points never share a name, and the seed closes the run id (``ppo_rnd_b1-s2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# The factors a configuration name is made of, in this order.
NAME_FACTORS = ("motivation", "model", "normalise_int_reward", "critic_init")

# The seed's table of RND variants (method.md §3.2): (motivation, model, normalise_int_reward, critic_init).
PRESETS: dict[tuple[str, str, str, str], str] = {
    ("rnd", "A", "false", "0.1"): "ppo_rnd_a0",
    ("rnd", "B", "false", "0.1"): "ppo_rnd_b0",
    ("rnd", "B", "false", "sqrt2"): "ppo_rnd_b1",
    ("rnd", "B", "true", "0.1"): "ppo_rnd_b2",
    ("rnd", "B", "true", "sqrt2"): "ppo_rnd_b3",
    ("rnd", "C", "false", "0.1"): "ppo_rnd_c0",
    ("rnd", "C", "false", "sqrt2"): "ppo_rnd_c1",
    ("rnd", "D", "false", "0.1"): "ppo_rnd_d0",
}

DEFAULT_ENV = "montezuma"
# Groups whose choice changes the run but is not part of the configuration's name unless non-default.
EXTRA_GROUPS = {"env": DEFAULT_ENV, "ppo": "seed"}
# Overrides that never change what is computed (or are the seed, which closes the id).
NOT_NAMING_KEYS = {"seed", "name", "sweep_name", "dry_run", "device", "torch_threads", "experiment"}
NOT_NAMING_PREFIXES = ("hydra", "logger", "budget", "debug", "hydra/")


def _choice(choices: Mapping[str, Any], key: str, default: str) -> str:
    value = choices.get(key)
    return default if value is None else str(value)


def config_name(choices: Mapping[str, Any]) -> str:
    """The name shared by all seeds of one configuration."""
    key = (
        _choice(choices, "motivation", "rnd"),
        _choice(choices, "model", "A"),
        _choice(choices, "normalise_int_reward", "false"),
        _choice(choices, "critic_init", "0.1"),
    )
    name = PRESETS.get(key)
    if name is None:
        motivation, model, nir, critic = key
        name = f"ppo_{motivation}_{model.lower()}-nir_{nir}-ci_{critic}"
    for group, default in EXTRA_GROUPS.items():
        value = _choice(choices, group, default)
        if value != default:
            name += f"-{group}_{value}"
    return name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")


def value_override_suffix(task_overrides: Iterable[str], groups: Iterable[str]) -> str:
    """``-key=value`` parts for the overrides that are not group choices (sorted, so order does not matter)."""
    group_set = set(groups)
    parts = []
    for item in task_overrides:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key in group_set or key in NOT_NAMING_KEYS or key.startswith(NOT_NAMING_PREFIXES):
            continue
        parts.append(_slug(f"{key}={value.strip(chr(39) + chr(34))}"))
    return "".join(f"-{p}" for p in sorted(parts))


def run_id(choices: Mapping[str, Any], task_overrides: Iterable[str], seed: int, name: str = "") -> str:
    """Directory and W&B name of one run: configuration name, value overrides, seed.

    An explicit ``name`` replaces both the configuration name and the value-override part.
    """
    if name:
        return f"{name}-s{seed}"
    return f"{config_name(choices)}{value_override_suffix(task_overrides, choices.keys())}-s{seed}"
