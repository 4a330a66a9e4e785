"""The motivation registry: a class registers under its ``name``, the config group's YAML files declare the same
names, and the loop builds whichever is configured (docs/architecture.md, "add a motivation")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

import rlsweep
from rlsweep.config.schema import MOTIVATION_NAMES, MotivationConfig
from rlsweep.motivation import MOTIVATIONS, build_motivation, register_motivation
from rlsweep.motivation.rnd import RND

GROUP = Path(rlsweep.__file__).parent / "conf" / "motivation"


def test_the_yaml_files_declare_the_names_the_schema_allows_and_the_classes_register() -> None:
    names = {yaml.safe_load(p.read_text())["name"] for p in GROUP.glob("*.yaml")}
    assert set(MOTIVATION_NAMES) == names == set(MOTIVATIONS)
    assert MOTIVATION_NAMES[0] == "none"


@pytest.mark.parametrize("name", MOTIVATION_NAMES)
def test_each_configured_motivation_builds_its_registered_class(name: str) -> None:
    options = [yaml.safe_load(p.read_text()) for p in sorted(GROUP.glob("*.yaml"))]
    settings = next(o for o in options if o["name"] == name)
    cfg = replace(MotivationConfig(), **settings)
    motivation = build_motivation(cfg, (1, 32, 32), torch.device("cpu"), num_envs=4)
    assert type(motivation) is MOTIVATIONS[name] and motivation.name == name
    assert motivation.reward(torch.zeros(3, 1, 32, 32, dtype=torch.uint8)).shape == (3,)


def test_a_second_class_of_one_name_is_refused_naming_both() -> None:
    class RNDAgain(RND):
        pass

    with pytest.raises(ValueError, match=r"motivation 'rnd' is registered twice: RND, .*RNDAgain"):
        register_motivation(RNDAgain)
    assert MOTIVATIONS["rnd"] is RND
