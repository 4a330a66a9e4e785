"""The env-family registry: what one environment backend declares so that rlsweep can build, list and check it.

An env family is a backend with ids of its own: the synthetic test envs (``fake``, ``maze``, ``chain``), envpool
Atari (``*-v5``), envpool Procgen (``procgen-<game>``). Each declares itself once, in its own module, as an
:class:`EnvFamily` named ``FAMILY``; :mod:`rlsweep.envs` registers them in order. Nothing else branches on the
kind of id: :func:`rlsweep.envs.make_env` builds through the family, and :func:`check_env` runs before any job
starts (unknown ids with "did you mean", the family's own checks, the options only some families offer). The
``env`` section's fields and defaults are the config schema's (:class:`rlsweep.config.schema.EnvConfig`): a
family reads them, it never copies them.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rlsweep.config.schema import EnvConfig
from rlsweep.config.validate import ConfigError
from rlsweep.envs.base import VecEnv

__all__ = [
    "FAMILIES",
    "EnvFamily",
    "check_env",
    "env_settings",
    "family_of",
    "known_env_ids",
    "known_family",
    "register_env_family",
]


def _nothing_to_check(env: EnvConfig) -> None:
    """Most families have nothing to check beyond their ids."""


@dataclass(frozen=True)
class EnvFamily:
    """One backend's declaration. ``build(env, num_envs, seed)`` gets the ``env`` section with every field set
    (the schema's defaults filled in); ``check(env)`` raises ValueError with a message for the user, and is called
    before any job starts, after the id is known to be one of ``ids()``."""

    name: str
    ids_look: str  # how the ids look, for messages: "procgen-<game> such as procgen-coinrun"
    owns: Callable[[str], bool]  # is this id one of the family's (cheap: no emulator import)
    ids: Callable[[], Iterable[str]]  # every id the family knows (may import its emulator)
    build: Callable[[EnvConfig, int, int], VecEnv]
    check: Callable[[EnvConfig], None] = _nothing_to_check
    colour: bool = False  # offers env.grayscale=false (RGB frames)
    steps_part: bool = True  # can step part of its envs (perf.double_buffer steps halves)


FAMILIES: dict[str, EnvFamily] = {}


def register_env_family(family: EnvFamily) -> EnvFamily:
    """Add ``family`` to the registry; a second family of one name is a programming error."""
    if family.name in FAMILIES:
        raise ValueError(f"env family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def family_of(env_id: str) -> EnvFamily | None:
    """The family that owns ``env_id``, in registration order; None when no family claims it."""
    return next((f for f in FAMILIES.values() if f.owns(env_id)), None)


def known_family(env_id: str) -> EnvFamily:
    """The family of ``env_id`` when the id is one it knows; ValueError saying what each family allows otherwise."""
    family = family_of(env_id)
    if family is None or env_id not in family.ids():
        close = difflib.get_close_matches(env_id, sorted(_known_ids()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        looks = "; ".join(f"{f.name}: {f.ids_look}" for f in FAMILIES.values())
        raise ValueError(f"Invalid value for env.id: {env_id!r}{hint} (allowed: {looks})")
    return family


def known_env_ids() -> list[str]:
    """Every id of every family, in registration order."""
    return [i for f in FAMILIES.values() for i in f.ids()]


@functools.cache
def _known_ids() -> frozenset[str]:
    # Cached for the process: the envpool families read envpool's registry (about a second to import).
    return frozenset(known_env_ids())


def env_settings(env: Any) -> EnvConfig:
    """The ``env`` section as an :class:`EnvConfig`, fields it lacks at the schema's defaults: ``env`` may be the
    DictConfig of a composed config, a plain mapping, or a small namespace with only the fields a caller sets."""
    if isinstance(env, EnvConfig):
        return env
    get: Callable[[str], Any] = env.get if isinstance(env, Mapping) else functools.partial(getattr, env)
    given = {}
    for field in dataclasses.fields(EnvConfig):
        try:
            given[field.name] = get(field.name)
        except (AttributeError, KeyError):  # a namespace without the field; OmegaConf's struct configs
            continue
    return EnvConfig(**{k: v for k, v in given.items() if v is not None})


def check_env(cfg: Mapping[str, Any]) -> None:
    """The env checks of a composed config, before any job starts: the id is one a family knows, the family's own
    checks pass, and the options only some families offer are asked of those (RGB frames, stepping half of the
    envs); ConfigError naming the key, the value and what is allowed."""
    env = env_settings(cfg["env"])
    try:
        family = known_family(env.id)
        family.check(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not env.grayscale and not family.colour:
        colour = [f"{f.name} ({f.ids_look})" for f in FAMILIES.values() if f.colour]
        raise ConfigError(
            f"Invalid value for env.grayscale: false with env.id={env.id!r} (colour frames are offered for "
            f"{', '.join(colour)} only; {family.name} envs are grey)"
        )
    if cfg["perf"]["double_buffer"] and not family.steps_part:
        raise ConfigError(
            f"Invalid value for perf.double_buffer: true with env.id={env.id!r} (allowed: true only with an env "
            f"whose family can step part of its envs: {', '.join(f.name for f in FAMILIES.values() if f.steps_part)})"
        )
