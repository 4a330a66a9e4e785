"""The env-family registry: ids go to the family that owns them, the schema's defaults fill what a caller leaves
out, and the checks before any job starts come from the family (docs/architecture.md, "add an env family")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import rlsweep.envs
from rlsweep.config import ConfigError, EnvConfig
from rlsweep.envs import FAMILIES, EnvFamily, check_env, env_settings, family_of, make_env
from rlsweep.envs.family import register_env_family
from rlsweep.envs.synthetic import ChainEnv


def _cfg(double_buffer: bool = False, **env: Any) -> dict[str, Any]:
    return {"env": env, "perf": {"double_buffer": double_buffer}}


def test_each_id_belongs_to_the_family_that_builds_it() -> None:
    assert [f.name for f in FAMILIES.values()] == ["synthetic", "atari", "procgen", "minigrid"]
    for env_id, name in [("maze", "synthetic"), ("MontezumaRevenge-v5", "atari"), ("procgen-coinrun", "procgen")]:
        family = family_of(env_id)
        assert family is not None and family.name == name
        assert env_id in family.ids()
    assert family_of("CartPole-v1") is None


def test_fields_left_out_take_the_schemas_defaults_not_a_copy() -> None:
    got = env_settings(SimpleNamespace(id="maze", maze_rooms=2))
    assert got == dataclasses.replace(EnvConfig(), id="maze", maze_rooms=2)
    assert env_settings({"id": "chain", "frame_size": 16}) == dataclasses.replace(
        EnvConfig(), id="chain", frame_size=16
    )
    env = make_env(SimpleNamespace(id="chain"), num_envs=2, seed=0)
    assert env.obs_shape == (EnvConfig.frame_stack, EnvConfig.frame_size, EnvConfig.frame_size)


def test_an_unknown_id_names_each_family_and_the_closest_id() -> None:
    with pytest.raises(ConfigError) as err:
        check_env(_cfg(id="MontezumasRevenge-v5"))
    msg = str(err.value)
    assert msg.startswith("Invalid value for env.id: 'MontezumasRevenge-v5' (did you mean MontezumaRevenge-v5?)")
    assert "synthetic: fake, maze, chain; atari: an envpool Atari id" in msg and "procgen: procgen-<game>" in msg
    with pytest.raises(ValueError, match=r"env\.id: 'Nope-v5'"):
        make_env(SimpleNamespace(id="Nope-v5"), num_envs=1, seed=0)


def test_options_only_some_families_offer_are_refused_for_the_others() -> None:
    check_env(_cfg(id="MontezumaRevenge-v5", double_buffer=True))  # envpool steps half of its envs
    with pytest.raises(ConfigError, match=r"env\.grayscale: false with env\.id='maze' .*procgen \(procgen-<game>"):
        check_env(_cfg(id="maze", grayscale=False))
    with pytest.raises(ConfigError, match=r"perf\.double_buffer: true with env\.id='fake' .*: atari, procgen\)"):
        check_env(_cfg(id="fake", double_buffer=True))


def test_a_family_check_is_one_config_error() -> None:
    # Procgen's: the game must offer the mode (coinrun has no memory mode in Procgen).
    with pytest.raises(ConfigError, match=r"env\.distribution_mode: 'memory' with env\.id='procgen-coinrun'"):
        check_env(_cfg(id="procgen-coinrun", distribution_mode="memory", grayscale=False))


@pytest.fixture
def corridor() -> Iterator[EnvFamily]:
    """A family added the way docs/architecture.md says: a declaration, registered; removed after the test."""

    def build(env: EnvConfig, num_envs: int, seed: int) -> ChainEnv:
        return ChainEnv(num_envs, env.frame_size, env.frame_stack, env.max_episode_steps, seed, length=int(env.id[9:]))

    def check(env: EnvConfig) -> None:
        if env.frame_size < 16:
            raise ValueError(f"Invalid value for env.frame_size: {env.frame_size} with env.id={env.id!r} (>= 16)")

    family = EnvFamily(
        name="corridor",
        ids_look="corridor-<length> such as corridor-5",
        owns=lambda i: i.startswith("corridor-"),
        ids=lambda: [f"corridor-{n}" for n in range(2, 10)],
        build=build,
        check=check,
    )
    register_env_family(family)
    yield family
    del FAMILIES["corridor"]


def test_a_new_family_builds_lists_and_checks_through_the_registry(corridor: EnvFamily) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_env_family(corridor)
    assert "corridor-5" in rlsweep.envs.known_env_ids()
    env = make_env(SimpleNamespace(id="corridor-5", frame_size=16, frame_stack=1), num_envs=3, seed=1)
    obs = env.reset()
    assert obs.shape == (3, 1, 16, 16) and obs.dtype == np.uint8
    check_env(_cfg(id="corridor-5", frame_size=16))
    with pytest.raises(ConfigError, match=r"env\.frame_size: 8 with env\.id='corridor-5'"):
        check_env(_cfg(id="corridor-5", frame_size=8))
    with pytest.raises(ConfigError, match=r"corridor: corridor-<length> such as corridor-5"):
        check_env(_cfg(id="corridor-12"))
