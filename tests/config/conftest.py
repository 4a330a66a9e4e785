"""Fixtures of the config tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import rlsweep.config
from rlsweep.config import CONF_DIR


@pytest.fixture
def hydra_ctx() -> Iterator[None]:
    """Hydra initialised on the package's config tree, for ``hydra.compose`` (per test: the planner clears it)."""
    rlsweep.config.register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()
