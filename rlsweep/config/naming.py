"""Stable, readable run names from the group choices and the experiment options.

A configuration is named by its *name factors*, the groups that say which method runs (:data:`NAME_FACTORS`):
``ppo_<motivation>_<model>-nir_<normalise_int_reward>-ci_<critic_init>``, followed by ``-env_<env>`` and
``-ppo_<ppo>`` when those groups are not at their defaults. Value overrides outside the groups
(``ppo.learning_rate=3e-4``) are appended, so two grid points never share a name, and the seed closes the run id
(``ppo_rnd_b1-s2``).

The experiment options (conf/experiment/*.yaml and the generated ones of :mod:`rlsweep.config.presets`) name
what they define, under their option name; nothing here lists them. Each is read once for its defaults list
(the group choices it makes) and for whether it also sets values:

* An experiment that only chooses the name factors, all of them, is recognised from the choices: any grid
  point with those choices carries its name, with or without ``experiment=`` (``model=B critic_init=sqrt2``
  is ``ppo_rnd_b1``, as ``experiment=ppo_rnd_b1``).
* Any other experiment that chooses all the name factors (it sets values, or chooses more groups) cannot be
  recognised from the choices -- ``ppo_snd_c_0/3/4`` share theirs -- so it names the runs started with it while
  the naming groups it chooses hold (``experiment=ppo_snd_c_3 env=gravitar`` is ``ppo_snd_c_3-env_gravitar``);
  once one of them is overridden, the canonical name gets ``-from_<experiment>`` so it stays distinct and
  traceable.
* An experiment that leaves a name factor to the grid (``demo_maze`` chooses the env, the budget and the
  sizes, not the method) names nothing: its runs get the canonical name of their choices.

The groups' defaults are read from the defaults list of conf/config.yaml. Everything read is cached: naming a
point is a few dictionary look-ups.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlsweep.config.schema import CONTROL_KEYS

# The factors a configuration name is made of, in this order.
NAME_FACTORS = ("motivation", "model", "normalise_int_reward", "critic_init")
# Groups whose choice changes the run but is not part of the configuration's name unless non-default.
EXTRA_GROUPS = ("env", "ppo", "fidelity")
NAMING_GROUPS = (*NAME_FACTORS, *EXTRA_GROUPS)
# Overrides that never change what is computed (or are the seed, which closes the id).
NOT_NAMING_KEYS = {"seed", "experiment", *CONTROL_KEYS}
NOT_NAMING_PREFIXES = ("hydra", "logger", "budget", "hydra/")


@dataclass(frozen=True)
class Experiment:
    """What naming needs to know of one experiment option."""

    name: str
    choices: Mapping[str, str]  # group -> option, from its defaults list
    sets_values: bool  # it sets values besides its group choices


@dataclass(frozen=True)
class _Tables:
    defaults: Mapping[str, str]  # group -> default option (conf/config.yaml)
    by_choices: Mapping[tuple[str, ...], str]  # name-factor options -> experiment recognised from them
    by_name: Mapping[str, Mapping[str, str]]  # experiment naming its runs -> the naming-group choices it makes


def _option(value: Any) -> str:
    # YAML reads an unquoted true / 0.1 as a bool / float; option names are strings.
    return str(value).lower() if isinstance(value, bool) else str(value)


def _defaults_list(node: Mapping[str, Any] | None) -> dict[str, str]:
    """Group -> option of the entries ``- [override ][/]group: option`` of a config's defaults list."""
    out: dict[str, str] = {}
    for entry in (node or {}).get("defaults") or []:
        if not isinstance(entry, Mapping):
            continue  # _self_, or a config without a group
        for key, value in entry.items():
            group = str(key).removeprefix("override ").strip().lstrip("/")
            if value is not None and "/" not in group:
                out[group] = _option(value)
    return out


def read_experiment(name: str, node: Mapping[str, Any] | None) -> Experiment:
    """An experiment option as naming sees it, from its config node (a YAML file's content)."""
    values = {k for k in (node or {}) if k != "defaults"}
    return Experiment(name, _defaults_list(node), sets_values=bool(values))


def _conf_dir() -> Path:
    from rlsweep.config import CONF_DIR  # the package is initialised by the time a name is asked for

    return CONF_DIR


@functools.cache
def experiments() -> dict[str, Experiment]:
    """Every experiment option: the files under conf/experiment/ and the generated presets."""
    from rlsweep.config.presets import generated_experiments

    root = _conf_dir() / "experiment"
    out = {
        path.relative_to(root).with_suffix("").as_posix(): yaml.safe_load(path.read_text())
        for path in sorted(root.rglob("*.yaml"))
    }
    out.update(generated_experiments())
    return {name: read_experiment(name, node) for name, node in sorted(out.items())}


@functools.cache
def group_defaults() -> dict[str, str]:
    """Group -> default option, from the defaults list of conf/config.yaml."""
    return _defaults_list(yaml.safe_load((_conf_dir() / "config.yaml").read_text()))


@functools.cache
def _tables() -> _Tables:
    defaults = group_defaults()
    by_choices: dict[tuple[str, ...], str] = {}
    by_name: dict[str, Mapping[str, str]] = {}
    for exp in experiments().values():
        if not all(g in exp.choices for g in NAME_FACTORS):
            continue  # leaves the method to the grid: names nothing
        if not exp.sets_values and set(exp.choices) == set(NAME_FACTORS):
            by_choices.setdefault(tuple(exp.choices[g] for g in NAME_FACTORS), exp.name)
        else:
            by_name[exp.name] = {g: o for g, o in exp.choices.items() if g in NAMING_GROUPS}
    return _Tables(defaults, by_choices, by_name)


def _choice(choices: Mapping[str, Any], group: str, defaults: Mapping[str, str]) -> str:
    value = choices.get(group)
    return defaults[group] if value is None else str(value)


def config_name(choices: Mapping[str, Any]) -> str:
    """The name shared by all seeds of one configuration."""
    tables = _tables()
    preset = choices.get("experiment")
    defining = tables.by_name.get(str(preset)) if preset else None
    if defining is None:
        return _canonical_name(choices, tables)
    if any(_choice(choices, g, tables.defaults) != v for g, v in defining.items()):
        return f"{_canonical_name(choices, tables)}-from_{preset}"
    return str(preset) + _extra_suffix(choices, tables, skip=defining)


def _canonical_name(choices: Mapping[str, Any], tables: _Tables) -> str:
    key = tuple(_choice(choices, g, tables.defaults) for g in NAME_FACTORS)
    name = tables.by_choices.get(key)
    if name is None:
        motivation, model, nir, critic = key
        name = f"ppo_{motivation}_{model.lower()}-nir_{nir}-ci_{critic}"
    return name + _extra_suffix(choices, tables)


def _extra_suffix(choices: Mapping[str, Any], tables: _Tables, skip: Iterable[str] = ()) -> str:
    parts = []
    for group in EXTRA_GROUPS:
        value = _choice(choices, group, tables.defaults)
        if group not in skip and value != tables.defaults[group]:
            parts.append(f"-{group}_{value}")
    return "".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")


def _override_parts(task_overrides: Iterable[str], groups: Iterable[str]) -> list[str]:
    """``key=value`` for the overrides that are not group choices (sorted, so order does not matter)."""
    group_set = set(groups)
    parts = []
    for item in task_overrides:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key in group_set or key in NOT_NAMING_KEYS or key.startswith(NOT_NAMING_PREFIXES):
            continue
        parts.append(_slug(f"{key}={value.strip(chr(39) + chr(34))}"))
    return sorted(parts)


def value_override_suffix(task_overrides: Iterable[str], groups: Iterable[str]) -> str:
    """``-key=value`` parts for the overrides that are not group choices (sorted, so order does not matter)."""
    return "".join(f"-{p}" for p in _override_parts(task_overrides, groups))


#: Longest run id: a directory name holds at most 255 bytes (every id that fits is kept as it is, so sweeps
#: named before this limit existed find their runs).
MAX_RUN_ID = 255


def run_id(choices: Mapping[str, Any], task_overrides: Iterable[str], seed: int, name: str = "") -> str:
    """Directory and W&B name of one run: configuration name, value overrides, seed.

    An explicit ``name`` replaces both the configuration name and the value-override part. A name longer than
    :data:`MAX_RUN_ID` keeps the configuration name and the override parts that fit, then ``-h`` and a digest
    of all the override parts, so that it stays the same for the same command and distinct for distinct ones.
    """
    if name:
        return f"{name}-s{seed}"
    base, parts = config_name(choices), _override_parts(task_overrides, choices.keys())
    full = f"{base}{''.join(f'-{p}' for p in parts)}-s{seed}"
    if len(full.encode()) <= MAX_RUN_ID:
        return full
    tail = f"-h{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:10]}-s{seed}"
    kept = base
    for part in parts:
        if len(f"{kept}-{part}{tail}".encode()) > MAX_RUN_ID:
            break
        kept += f"-{part}"
    return f"{kept}{tail}"
