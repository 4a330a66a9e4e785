"""Stable, readable run names from the group choices.

A grid point that is one of the seed's presets is named after it (model=B normalise_int_reward=false
critic_init=sqrt2 motivation=rnd is ``ppo_rnd_b1``); any other point gets a canonical name built from the
choices that define it. Value overrides outside the groups (``ppo.learning_rate=3e-4``) are appended, so two
grid points never share a name, and the seed closes the run id (``ppo_rnd_b1-s2``).

Experiment presets that set *values* (not only group choices) cannot be recognised from the choices: the SND
presets ``ppo_snd_c_0/3/4`` share their choices and differ in values, and the paper presets
``paper_<variant>_<game>`` set per-game coefficients. They are listed in ``VALUE_PRESETS`` with the group
choices they make; a run of such a preset is named after it while those choices hold
(``experiment=ppo_snd_c_3 env=gravitar`` is ``ppo_snd_c_3-env_gravitar``); if a group is overridden away from
the preset, the canonical name gets ``-from_<preset>`` so it stays distinct and traceable.
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

# Presets defined by values: name -> the group choices the preset makes (method.md §3.3, §3.4).
_SND_C = {"motivation": "snd_v", "model": "C", "normalise_int_reward": "false", "critic_init": "0.1"}
PAPER_GAMES = (
    "montezuma", "gravitar", "venture", "private_eye", "pitfall", "solaris",  # Atari
    "caveflyer", "climber", "coinrun", "jumper",  # Procgen, exploration mode
)  # fmt: skip
PAPER_VARIANTS = {"baseline": "none", "rnd": "rnd", "snd_v": "snd_v", "snd_vic": "snd_vic", "snd_std": "snd_std"}
VALUE_PRESETS: dict[str, dict[str, str]] = {
    "ppo_snd_c_0": _SND_C,
    "ppo_snd_c_3": _SND_C,
    "ppo_snd_c_4": _SND_C,
    **{
        f"paper_{variant}_{game}": {**_SND_C, "motivation": motivation, "env": game}
        for variant, motivation in PAPER_VARIANTS.items()
        for game in PAPER_GAMES
    },
}

DEFAULT_ENV = "montezuma"
# Groups whose choice changes the run but is not part of the configuration's name unless non-default.
EXTRA_GROUPS = {"env": DEFAULT_ENV, "ppo": "seed"}
# Overrides that never change what is computed (or are the seed, which closes the id).
NOT_NAMING_KEYS = {"seed", "name", "sweep_name", "dry_run", "device", "torch_threads", "experiment"}
NOT_NAMING_PREFIXES = ("hydra", "logger", "budget", "hydra/")


def _choice(choices: Mapping[str, Any], key: str, default: str) -> str:
    value = choices.get(key)
    return default if value is None else str(value)


def config_name(choices: Mapping[str, Any]) -> str:
    """The name shared by all seeds of one configuration."""
    preset = choices.get("experiment")
    defining = VALUE_PRESETS.get(str(preset)) if preset else None
    if defining is not None:
        defaults = {"motivation": "rnd", "model": "A", "normalise_int_reward": "false", "critic_init": "0.1"}
        defaults.update(EXTRA_GROUPS)
        if all(_choice(choices, g, defaults[g]) == v for g, v in defining.items()):
            name = str(preset)
            for group, default in EXTRA_GROUPS.items():
                value = _choice(choices, group, default)
                if group not in defining and value != default:
                    name += f"-{group}_{value}"
            return name
        return f"{_canonical_name(choices)}-from_{preset}"
    return _canonical_name(choices)


def _canonical_name(choices: Mapping[str, Any]) -> str:
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
