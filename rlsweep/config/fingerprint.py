"""What a run trains, as a fingerprint: the part of the resolved config that decides the numbers.

A checkpoint can only be continued under the configuration it was made with. The keys that decide what is
trained are the method and the world it is trained in: ``model``, ``ppo``, ``motivation``, ``env`` and the
``seed``. Everything else may change between attempts without changing what a checkpoint means: the budget
(raising ``budget.total_steps`` continues a run further), logging, debugging switches, speed switches that
compute the same numbers (``perf``), the device, and the run-control keys (:data:`CONTROL_KEYS`).

The fingerprint is kept in the run record and in every checkpoint; a rerun under another one is refused
with the keys that differ, unless ``resume=continue`` or ``resume=restart`` says what to do
(:mod:`rlsweep.launching.points`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

TRAINING_SECTIONS = ("model", "ppo", "motivation", "env", "seed")
# Keys inside those sections that do not change the numbers.
NOT_TRAINING = frozenset({"env.num_threads"})


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted names (``{"ppo": {"num_envs": 8}}`` -> ``{"ppo.num_envs": 8}``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def training_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a resolved config that decide what is trained, flattened to dotted names."""
    flat: dict[str, Any] = {}
    for section in TRAINING_SECTIONS:
        if section in config:
            flat.update(_section(section, config[section]))
    return flat


def _section(name: str, value: Any) -> dict[str, Any]:
    return {k: v for k, v in flatten({name: value}).items() if k not in NOT_TRAINING}


def without_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config less its ``seed``: what the seeds of one configuration have in common (the seeds that may
    share a process, ``seeds_per_process``, are those whose configs are equal here)."""
    return {k: v for k, v in config.items() if k != "seed"}


def fingerprint(config: Mapping[str, Any], cache: dict[tuple[str, int], tuple[Any, str]] | None = None) -> str:
    """A short digest of the training part of a resolved config (stable across processes and Python versions).

    With ``cache``, a section that many points share (one object: the planner copies only what an override
    changes, so a seed grid shares every section) is serialised once.
    """
    parts = []
    for section in TRAINING_SECTIONS:
        value = config.get(section)
        key = (section, id(value))
        hit = cache.get(key) if cache is not None else None
        if hit is not None and hit[0] is value:
            text = hit[1]
        else:
            text = json.dumps(_section(section, value), sort_keys=True, default=str)
            if cache is not None:
                cache[key] = (value, text)
        parts.append(text)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def differences(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    """``ppo.num_envs 4 -> 128, env.id ...`` for the keys that differ (at most ``limit`` named)."""
    keys = sorted(set(old) | set(new))
    changed = [f"{k} {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}" for k in keys if old.get(k) != new.get(k)]
    if len(changed) > limit:
        changed = [*changed[:limit], f"and {len(changed) - limit} more"]
    return ", ".join(changed)
