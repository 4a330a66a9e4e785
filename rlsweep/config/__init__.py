"""Configuration: the typed schema, its registration with Hydra, validation, run naming.

Knows nothing about torch or environments (env ids are looked up lazily for validation only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from rlsweep.config.launchers import LocalLauncherConf, SlurmLauncherConf
from rlsweep.config.naming import config_name, run_id
from rlsweep.config.schema import (
    BudgetConfig,
    Config,
    DebugConfig,
    EnvConfig,
    LoggerConfig,
    ModelConfig,
    MotivationConfig,
    PPOConfig,
)
from rlsweep.config.validate import ConfigError, check_value, validate

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # package data: ships with the wheel

__all__ = [
    "CONF_DIR",
    "BudgetConfig",
    "Config",
    "ConfigError",
    "DebugConfig",
    "EnvConfig",
    "LoggerConfig",
    "ModelConfig",
    "MotivationConfig",
    "PPOConfig",
    "check_value",
    "config_name",
    "register_configs",
    "run_id",
    "validate",
]


def _run_id_resolver(choices: Any, task_overrides: Any, seed: int, name: str) -> str:
    plain_choices = OmegaConf.to_container(choices) if OmegaConf.is_config(choices) else dict(choices)
    overrides = OmegaConf.to_container(task_overrides) if OmegaConf.is_config(task_overrides) else task_overrides
    assert isinstance(plain_choices, dict) and isinstance(overrides, list)
    return run_id({str(k): v for k, v in plain_choices.items()}, overrides, int(seed), str(name or ""))


def register_configs() -> None:
    """Register the root schema and the resolver that names run directories (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="hydra/launcher", name="local", node=LocalLauncherConf)
    cs.store(group="hydra/launcher", name="slurm", node=SlurmLauncherConf)
    if not OmegaConf.has_resolver("rlsweep_run_id"):
        OmegaConf.register_new_resolver("rlsweep_run_id", _run_id_resolver)
