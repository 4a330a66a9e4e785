"""Checks that types alone cannot express: ranges, allowed words, sizes that must divide, keys that go together.

Every check raises :class:`ConfigError` with one message naming the key, the bad value and what is allowed.
The same rules serve two callers: the pre-flight over a whole grid (before any job starts) and each job's own
check of its composed config. Works on plain nested mappings so that a 1,000-point grid checks in well
under a second, and imports neither torch nor an emulator.

Nothing here lists what a field allows a second time: the allowed words are declared on the schema's fields
(:func:`rlsweep.config.schema.one_of`). What an env id allows (the id itself, RGB frames, a Procgen game's modes)
is the env family's to say: :func:`rlsweep.envs.check_env` runs beside :func:`validate`, one layer up.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from rlsweep.config.schema import Config, allowed_words


class ConfigError(ValueError):
    """A bad config value; the message is meant for the user as is (no traceback needed)."""


@dataclasses.dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low excluded
    high_open: bool = False  # high excluded

    def contains(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        assert self.high is not None
        return f"{'<' if self.high_open else '<='} {self.high:g}"


POSITIVE = Range(0, None, low_open=True)
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
UNIT_OPEN = Range(0, 1, low_open=True, high_open=True)
DISCOUNT = Range(0, 1, low_open=True)

RANGES: dict[str, Range] = {
    "ppo.num_envs": AT_LEAST_1,
    "ppo.num_steps": AT_LEAST_1,
    "ppo.update_epochs": AT_LEAST_1,
    "ppo.minibatch_size": AT_LEAST_1,
    "ppo.learning_rate": POSITIVE,
    "ppo.adam_eps": POSITIVE,
    "ppo.gamma_ext": DISCOUNT,
    "ppo.gamma_int": DISCOUNT,
    "ppo.gae_lambda": Range(0, 1),
    "ppo.ext_adv_coef": NON_NEGATIVE,
    "ppo.int_adv_coef": NON_NEGATIVE,
    "ppo.clip_coef": UNIT_OPEN,
    "ppo.ent_coef": NON_NEGATIVE,
    "ppo.vf_coef": NON_NEGATIVE,
    "ppo.max_grad_norm": POSITIVE,
    "model.critic_init_gain": POSITIVE,
    "motivation.learning_rate": POSITIVE,
    "motivation.reward_scale": NON_NEGATIVE,
    "motivation.reward_clip": NON_NEGATIVE,
    "motivation.update_proportion": Range(0, 1, low_open=True),
    "motivation.obs_var_floor": Range(0, None),
    "motivation.warmup_steps": NON_NEGATIVE,
    "motivation.obs_norm_clip": POSITIVE,
    "motivation.target_learning_rate": POSITIVE,
    "motivation.target_batch_size": Range(2),  # VICReg/std need at least two samples
    "motivation.pair_far_prob": Range(0, 1),
    "motivation.magnitude_threshold": NON_NEGATIVE,
    "motivation.aug_prob": Range(0, 1),
    "motivation.aug_tile_drop": Range(0, 1, high_open=True),
    "motivation.aug_noise": NON_NEGATIVE,
    "motivation.vicreg_inv": NON_NEGATIVE,
    "motivation.vicreg_var": NON_NEGATIVE,
    "motivation.vicreg_cov": NON_NEGATIVE,
    "motivation.stdim_norm_coef": NON_NEGATIVE,
    "motivation.stdim_std_coef": NON_NEGATIVE,
    "motivation.hash_bits": AT_LEAST_1,
    "motivation.hash_side": AT_LEAST_1,
    "env.frame_size": Range(16),
    "env.frame_stack": AT_LEAST_1,
    "env.frame_skip": AT_LEAST_1,
    "env.sticky_action_prob": Range(0, 1, high_open=True),
    "env.max_episode_steps": AT_LEAST_1,
    "env.noop_max": NON_NEGATIVE,
    "env.num_threads": NON_NEGATIVE,
    "env.random_action_prob": Range(0, 1),
    "env.maze_rooms": AT_LEAST_1,
    "env.maze_room_size": Range(3),
    "env.chain_length": Range(2),
    "budget.total_steps": AT_LEAST_1,
    "budget.log_every": AT_LEAST_1,
    "budget.checkpoint_every": AT_LEAST_1,
    "budget.keep_checkpoints": NON_NEGATIVE,
    "logger.console_every": AT_LEAST_1,
    "debug.crash_at_iteration": NON_NEGATIVE,
    "debug.pause_at_iteration": NON_NEGATIVE,
    "seed": NON_NEGATIVE,
    "torch_threads": NON_NEGATIVE,
    "seeds_per_process": AT_LEAST_1,
}

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@functools.cache
def _schema() -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Dotted key -> annotated type for every leaf of the schema, and dotted key -> allowed words where the
    field declares them (``schema.one_of``)."""
    types_: dict[str, Any] = {}
    choices: dict[str, tuple[str, ...]] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "defaults":
                continue
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")  # type: ignore[arg-type]
                continue
            types_[f"{prefix}{f.name}"] = tp
            words = allowed_words(f)
            if words is not None:
                choices[f"{prefix}{f.name}"] = words

    walk(Config, "")
    return types_, choices


def _field_types() -> dict[str, Any]:
    return _schema()[0]


def choices() -> dict[str, tuple[str, ...]]:
    """Dotted key -> the words the schema allows for it (every string field declared with ``one_of``)."""
    return _schema()[1]


def known_keys() -> list[str]:
    return sorted(_field_types())


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _initials(name: str) -> str:
    return "".join(word[0] for word in name.split("_") if word) if "_" in name else ""


def check_key(key: str) -> None:
    """Raise if ``key`` is not a leaf of the schema, listing what is allowed under its parent."""
    types_ = _field_types()
    if key in types_:
        return
    parent = key.rpartition(".")[0]
    siblings = [k for k in types_ if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(key, list(types_), n=1)
    # An abbreviation of a key's words (ppo.lr for ppo.learning_rate, ppo.mgn for ppo.max_grad_norm).
    leaf = key.rpartition(".")[2]
    short = [k for k in types_ if k.rpartition(".")[0] == parent and _initials(k.rpartition(".")[2]) == leaf]
    hint = f" (did you mean {(short or close)[0]}?)" if short or close else ""
    where = f"under {parent}" if parent and siblings else "at the top level"
    allowed = siblings or [k for k in types_ if "." not in k]
    if parent and not siblings:
        groups = sorted({k.partition(".")[0] for k in types_ if "." in k})
        raise ConfigError(f"Unknown key {key}{hint}; config sections are: {', '.join(groups)}")
    raise ConfigError(f"Unknown key {key}{hint}; allowed keys {where}: {', '.join(sorted(allowed))}")


def check_value(key: str, value: Any) -> Any:
    """Type-check and range-check one leaf value; returns it converted to the field's type."""
    check_key(key)
    tp = _field_types()[key]
    optional = isinstance(tp, types.UnionType) and type(None) in typing.get_args(tp)
    base = next((a for a in typing.get_args(tp) if a is not type(None)), tp) if optional else tp
    if value is None:
        if optional:
            return None
        raise ConfigError(f"Invalid value for {key}: null (a value of type {base.__name__} is required)")
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (allowed: true or false)")
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (an integer is required)")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (a number is required)")
        value = float(value)
    elif base is str:
        if isinstance(value, list | dict):
            raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (a string is required)")
        value = "true" if value is True else "false" if value is False else str(value)
    words = choices().get(key)
    if words is not None and value not in words:
        raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (allowed: {', '.join(words)})")
    rng = RANGES.get(key)
    if rng is not None and not rng.contains(value):
        raise ConfigError(f"Invalid value for {key}: {_fmt(value)} (must be {rng.describe()})")
    if key == "device" and not DEVICE_PATTERN.match(value):
        raise ConfigError(f"Invalid value for device: {_fmt(value)} (allowed: auto, cpu, cuda, cuda:N)")
    if key == "env.frame_size" and value % 4:  # multiples of 8 except for the cleanrl nets: check_combinations
        raise ConfigError(f"Invalid value for env.frame_size: {value} (must be a multiple of 8, >= 16)")
    return value


# Which SND target losses each motivation can train (snd_v's vicreg is the author's two-augmented-views variant).
TARGET_LOSSES = {"snd_v": ("mse", "vicreg"), "snd_vic": ("vicreg",), "snd_std": ("stdim",)}
# Distillation nets each SND target loss can use: ST-DIM needs the ST_DIM_CNN's 64-channel third conv map.
TARGET_NETWORKS = {"stdim": ("std", "vic")}


def check_combinations(cfg: Mapping[str, Any]) -> None:
    """Checks that span several keys: SND loss vs motivation and network, reused target features vs motivation,
    seeds per process vs compile mode, double buffering vs envs and seeds."""
    mot = cfg["motivation"]
    allowed = TARGET_LOSSES.get(mot["name"])
    if allowed is not None and mot["target_loss"] not in allowed:
        raise ConfigError(
            f"Invalid value for motivation.target_loss: {mot['target_loss']!r} with motivation.name="
            f"{mot['name']!r} (allowed: {', '.join(allowed)})"
        )
    if cfg["perf"]["reuse_target_features"] and mot["name"] not in ("none", "rnd"):
        raise ConfigError(
            f"Invalid value for perf.reuse_target_features: true with motivation.name={mot['name']!r} (allowed: "
            "true only with rnd, whose target is frozen; an SND target trains, so its features go stale)"
        )
    check_seeds_per_process(cfg)
    check_double_buffer(cfg)
    nets = TARGET_NETWORKS.get(mot["target_loss"])
    if allowed is not None and nets is not None and mot["network"] not in nets:
        raise ConfigError(
            f"Invalid value for motivation.network: {mot['network']!r} with motivation.target_loss="
            f"{mot['target_loss']!r} (allowed: {', '.join(nets)})"
        )
    size = cfg["env"]["frame_size"]
    nature_cnn_only = cfg["model"]["name"] == "cleanrl" and (mot["name"] == "none" or mot["network"] == "cleanrl")
    if size % 8 and not nature_cnn_only:
        raise ConfigError(
            f"Invalid value for env.frame_size: {size} (must be a multiple of 8, >= 16; a multiple of 4 such as "
            "CleanRL's 84 only with model=cleanrl and motivation.network=cleanrl)"
        )


def check_double_buffer(cfg: Mapping[str, Any]) -> None:
    """Double-buffered sampling steps half of the envs at a time: halves of one seed's envs, and target features
    kept by step whole (that the env family can step half of its envs is :func:`rlsweep.envs.check_env`'s)."""
    if not cfg["perf"]["double_buffer"]:
        return
    num_envs = cfg["ppo"]["num_envs"]
    refusals = [
        (num_envs < 2 or num_envs % 2 != 0, f"ppo.num_envs={num_envs}", "an even number of envs, two halves"),
        (cfg["seeds_per_process"] > 1, f"seeds_per_process={cfg['seeds_per_process']}", "seeds_per_process=1"),
        (cfg["perf"]["reuse_target_features"], "perf.reuse_target_features=true", "perf.reuse_target_features=false"),
    ]  # fmt: skip
    for refused, what, allowed in refusals:
        if refused:
            raise ConfigError(f"Invalid value for perf.double_buffer: true with {what} (allowed: true only with "
                              f"{allowed})")  # fmt: skip


def check_seeds_per_process(cfg: Mapping[str, Any]) -> None:
    """Several seeds in one process train with stacked networks (every motivation has them), not under
    torch.compile."""
    k = cfg["seeds_per_process"]
    if k == 1:
        return
    mode = cfg["perf"]["compile"]
    if mode != "none":
        raise ConfigError(
            f"Invalid value for seeds_per_process: {k} with perf.compile={mode!r} (allowed: 1; more only with "
            "perf.compile=none)"
        )


def _get(cfg: Mapping[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate(cfg: Mapping[str, Any]) -> None:
    """Check a composed config (plain nested mapping or DictConfig); raise ConfigError on the first problem."""
    for key in _field_types():
        check_value(key, _get(cfg, key))
    ppo = cfg["ppo"]
    batch = ppo["num_envs"] * ppo["num_steps"]
    if ppo["minibatch_size"] > batch or batch % ppo["minibatch_size"]:
        raise ConfigError(
            f"Invalid value for ppo.minibatch_size: {ppo['minibatch_size']} (must divide the rollout batch "
            f"ppo.num_envs * ppo.num_steps = {ppo['num_envs']} * {ppo['num_steps']} = {batch})"
        )
    check_combinations(cfg)
