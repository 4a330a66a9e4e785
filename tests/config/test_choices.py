"""Allowed values are owned once: the schema's fields declare their words, the registries build exactly those
names, and the group options under conf/ pick from them. Validation stays torch-free and its messages say, on
one line, the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest
from omegaconf import OmegaConf

from rlsweep.config import CONF_DIR, ConfigError, check_value, schema
from rlsweep.config.validate import choices


def _options(group: str) -> dict[str, dict[str, typing.Any]]:
    out = {}
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        data = OmegaConf.to_container(OmegaConf.load(path))
        assert isinstance(data, dict)
        out[path.stem] = {str(k): v for k, v in data.items()}
    return out


def test_model_names_agree_across_schema_registry_and_options() -> None:
    import rlsweep.models

    assert choices()["model.name"] == schema.MODEL_NAMES
    assert rlsweep.models.MODEL_NAMES == schema.MODEL_NAMES
    options = _options("model")
    assert set(options) == set(schema.MODEL_NAMES)
    assert all(data["name"] == option for option, data in options.items())


def test_motivation_names_agree_across_schema_registry_and_options() -> None:
    import rlsweep.motivation

    assert choices()["motivation.name"] == schema.MOTIVATION_NAMES
    assert set(rlsweep.motivation.MOTIVATIONS) == set(schema.MOTIVATION_NAMES)
    options = _options("motivation")
    assert set(options) == set(schema.MOTIVATION_NAMES)
    assert all(data["name"] == option for option, data in options.items())


def test_distillation_networks_agree_across_schema_registry_and_options() -> None:
    import rlsweep.models

    assert choices()["motivation.network"] == schema.DISTILLATION_NETWORKS
    assert rlsweep.models.DISTILLATION_ARCHS == schema.DISTILLATION_NETWORKS
    networks = {d["network"] for d in _options("motivation").values() if "network" in d}
    assert networks <= set(schema.DISTILLATION_NETWORKS)


def test_every_env_option_is_an_id_its_family_knows() -> None:
    import rlsweep.envs

    for name, option in _options("env").items():
        family = rlsweep.envs.family_of(str(option["id"]))
        assert family is not None, name
        assert option["id"] in family.ids(), name


def test_every_string_field_with_fixed_words_declares_them_and_its_default_is_one() -> None:
    def walk(cls: type, prefix: str) -> typing.Iterator[tuple[str, dataclasses.Field[typing.Any]]]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f

    declared = {key: f for key, f in walk(schema.Config, "") if schema.allowed_words(f) is not None}
    assert set(declared) == set(choices())
    for key, f in declared.items():
        assert f.default in choices()[key], key
    with pytest.raises(ValueError, match="not one of"):
        schema.one_of("E", schema.MODEL_NAMES)


@pytest.mark.parametrize("key", sorted(choices()))
def test_a_word_outside_a_fields_choices_is_one_clear_line(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_value(key, "bogus")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid value for {key}: 'bogus' (allowed: ")
    for word in choices()[key]:
        assert word in message


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("ppo.num_envs", 0, ">= 1"),
        ("ppo.clip_coef", 1.5, "(0, 1)"),
        ("ppo.num_envs", "abc", "integer"),
        ("device", "tpu", "auto, cpu, cuda, cuda:N"),
        ("ppo.num_env", 3, "ppo.num_envs"),
        ("modle.name", "A", "model.name"),
    ],
)
def test_bad_values_and_keys_are_one_clear_line(key: str, value: object, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_value(key, value)
    message = str(info.value)
    assert "\n" not in message
    assert key in message and allowed in message
    if not message.startswith("Unknown key"):
        assert repr(value) in message or str(value) in message


@pytest.mark.e2e
def test_validation_imports_no_torch() -> None:
    code = """
import dataclasses, sys
from rlsweep.config import Config, validate
from rlsweep.config.naming import config_name, run_id
cfg = dataclasses.asdict(Config())
for env_id in ("fake", "maze", "chain", "MontezumaRevenge-v5"):
    cfg["env"]["id"] = env_id
    validate(cfg)
assert config_name({"model": "B", "critic_init": "sqrt2"}) == "ppo_rnd_b1"
assert "torch" not in sys.modules, "validation imported torch"
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
