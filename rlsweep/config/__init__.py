"""Configuration: the typed schema, its registration with Hydra, validation, run naming.

Knows nothing about torch or environments (env ids are looked up lazily for validation only), and imports
Hydra only to compose (``register_configs``): a job reads its resolved config.yaml without it.
"""

from __future__ import annotations

from pathlib import Path

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


def register_configs() -> None:
    """Register the root schema with Hydra's ConfigStore (idempotent)."""
    # Imported here: a job loads its config.yaml without Hydra; only the planner composes.
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    from rlsweep.config.presets import register_presets  # the generated experiment options (paper_*)

    register_presets()
