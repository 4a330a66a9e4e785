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


def training_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a resolved config that decide what is trained, flattened to dotted names."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif prefix not in NOT_TRAINING:
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    for section in TRAINING_SECTIONS:
        if section in config:
            walk(section, config[section])
    return flat


def fingerprint(training: Mapping[str, Any]) -> str:
    """A short digest of :func:`training_config`'s result (stable across processes and Python versions)."""
    text = json.dumps(training, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    """``ppo.num_envs 4 -> 128, env.id ...`` for the keys that differ (at most ``limit`` named)."""
    keys = sorted(set(old) | set(new))
    changed = [f"{k} {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}" for k in keys if old.get(k) != new.get(k)]
    if len(changed) > limit:
        changed = [*changed[:limit], f"and {len(changed) - limit} more"]
    return ", ".join(changed) or "no key differs (the fingerprint's definition changed)"
