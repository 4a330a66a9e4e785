"""The SND paper's presets ``paper_<variant>_<game>``: one base configuration plus a row of data per game.

The paper (Pechac et al., [SND] config/ppo.config.json, method.md §3.4) runs one configuration on every game:
its PPOAtariNetwork, Adam 1e-4, PPO minibatches of 512 from one permutation, the motivation
trained in one pass over the rollout after PPO, 128 M agent steps on Atari and 64 M on Procgen. What changes
from game to game is the env, the budget and the intrinsic reward scale ``motivation_eta``; the baseline on
Montezuma alone also uses a single discount 0.99. That is :data:`PAPER_BASE`, :data:`PAPER_VARIANTS` and
:data:`PAPER_GAMES` below.

The network is where these presets depart from the paper: they build rlsweep's model C, the *author's* version
of that network (ReLU after the feature FC 512; method.md §2.3), because the paper's variant (a linear feature
layer, the actor's extra ReLU) is not implemented. Every other value is the paper's.

:func:`register_presets` offers the 5 x 10 combinations to Hydra as options of the ``experiment`` group
(package ``_global_``), built exactly as a YAML experiment file would be (a defaults list of group overrides,
then values), so ``experiment=paper_snd_std_montezuma`` and ``"experiment=glob(paper_*_montezuma)"``
work as for the files under conf/experiment/, and run naming (:mod:`rlsweep.config.naming`) reads them from
:func:`generated_experiments` like it reads the files.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

# Group choices and values every paper preset shares (model C: the author's version of the paper's network, see
# above; its 0.1 critic gain and no int-reward normalisation; the motivation options snd_vic / snd_std already
# train in one pass).
PAPER_BASE: dict[str, Any] = {
    "groups": {"model": "C", "normalise_int_reward": "false", "critic_init": "0.1"},
    "values": {"ppo": {"minibatch_sampling": "permutation"}},
}

# variant -> (motivation option, values on top of the option).
PAPER_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("none", {}),  # plain PPO ([SND] config id 1 on Atari)
    "rnd": (  # [SND] config id 2 on Atari
        "rnd",
        {
            "motivation": {
                "network": "a",  # RNDModelAtari: 8x8 convs
                "obs_norm": "mean",  # RunningStatsSimple: running mean subtracted, no warm-up
                "warmup_steps": 0,
                "predictor_updates": "one_pass",
                "update_proportion": 0.25,  # the paper's fixed keep probability (the seed's scales with the envs)
            }
        },
    ),
    "snd_v": ("snd_v", {"motivation": {"predictor_updates": "one_pass"}}),
    "snd_vic": ("snd_vic", {}),
    "snd_std": ("snd_std", {}),
}

ATARI, PROCGEN = "full", "full_procgen"  # the budget options: 128 M / 64 M agent steps

# game -> (budget, motivation_eta of SND-V, SND-VIC, SND-STD); the comment gives the [SND] config ids of
# SND-V, SND-VIC, SND-STD from the replication table (Procgen: the table lists no ids).
PAPER_GAMES: dict[str, tuple[str, float, float, float]] = {
    "montezuma": (ATARI, 0.5, 0.25, 1.0),  # 49, 44, 42
    "gravitar": (ATARI, 0.5, 0.25, 1.0),  # 14, 13, 11
    "venture": (ATARI, 0.5, 0.25, 0.25),  # 10, 8, 4
    "private_eye": (ATARI, 0.5, 0.25, 0.5),  # 8, 7, 4
    "pitfall": (ATARI, 0.5, 0.25, 1.0),  # 8, 7, 4
    "solaris": (ATARI, 0.5, 0.25, 0.5),  # 8, 7, 4
    "caveflyer": (PROCGEN, 0.5, 0.5, 0.5),
    "climber": (PROCGEN, 0.5, 0.5, 1.0),
    "coinrun": (PROCGEN, 0.5, 0.5, 0.25),
    "jumper": (PROCGEN, 0.5, 0.5, 1.0),
}
_ETA_COLUMN = {"snd_v": 1, "snd_vic": 2, "snd_std": 3}

# (variant, game) -> values that only this cell of the table has.
PAPER_EXCEPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("baseline", "montezuma"): {"ppo": {"gamma_ext": 0.99}},  # the paper's baseline uses a single gamma 0.99
}


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def paper_preset(variant: str, game: str) -> dict[str, Any]:
    """The experiment node of ``paper_<variant>_<game>``: its defaults list, then the values it sets."""
    motivation, variant_values = PAPER_VARIANTS[variant]
    row = PAPER_GAMES[game]
    groups = {**PAPER_BASE["groups"], "motivation": motivation, "env": game, "budget": row[0]}
    node: dict[str, Any] = {"defaults": [{f"override /{g}": option} for g, option in groups.items()]}
    _merge(node, PAPER_BASE["values"])
    _merge(node, variant_values)
    if variant in _ETA_COLUMN:
        _merge(node, {"motivation": {"reward_scale": row[_ETA_COLUMN[variant]]}})
    _merge(node, PAPER_EXCEPTIONS.get((variant, game), {}))
    return node


@functools.cache
def _generated() -> dict[str, dict[str, Any]]:
    return {f"paper_{v}_{g}": paper_preset(v, g) for v in PAPER_VARIANTS for g in PAPER_GAMES}


def generated_experiments() -> dict[str, dict[str, Any]]:
    """Option name -> experiment node, for every experiment option that is not a file under conf/experiment/."""
    return copy.deepcopy(_generated())


GROUP = "experiment"  # the config group the generated options belong to


class PresetSource(ConfigSource):
    """Hydra config source of the generated experiment options: group ``experiment``, one config per preset."""

    @staticmethod
    def scheme() -> str:
        return "rlsweep-presets"

    @staticmethod
    def _name(config_path: str) -> str | None:
        group, _, name = config_path.strip("/").removesuffix(".yaml").rpartition("/")
        return name if group == GROUP and name in _generated() else None

    def load_config(self, config_path: str) -> ConfigResult:
        name = self._name(config_path)
        if name is None:
            raise ConfigLoadError(f"Config not found: {self.full_path()}/{config_path}")
        return ConfigResult(
            config=OmegaConf.create(_generated()[name]),
            path=self.full_path(),
            provider=self.provider,
            header={"package": "_global_"},
        )

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") in ("", GROUP)

    def is_config(self, config_path: str) -> bool:
        return self._name(config_path) is not None

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        path = config_path.strip("/")
        if path == "" and results_filter in (None, ObjectType.GROUP):
            return [GROUP]
        if path == GROUP and results_filter in (None, ObjectType.CONFIG):
            return sorted(_generated())
        return []


class PresetSearchPath(SearchPathPlugin):
    """Puts :class:`PresetSource` on Hydra's search path, after conf/ (a file there wins over a preset)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="rlsweep-presets", path=f"{PresetSource.scheme()}://{__name__}")


def register_presets() -> None:
    """Make the generated experiment options visible to Hydra (idempotent; before Hydra is initialised).

    They come from a config source of their own on Hydra's search path rather than from the ConfigStore:
    Hydra deep-copies its whole repository, ConfigStore included, for every composition and every option
    listing, and 50 stored nodes made each of those several times slower. This source holds nothing but its
    name and builds a node when Hydra loads it.
    """
    Plugins.instance().register(PresetSource)
    Plugins.instance().register(PresetSearchPath)
