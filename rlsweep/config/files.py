"""A run's resolved config on disk, ``<run_dir>/config.yaml``: written once by the launcher (composed and checked by
:mod:`rlsweep.launching.plan`), read by the job, the evaluation and the analysis. No Hydra here: a job loads its
file with YAML and the typed schema only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from rlsweep.config.schema import Config
from rlsweep.rundir.record import write_text_atomic

CONFIG_FILE = "config.yaml"


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """The resolved config a job loads; written by the launcher before the job starts."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(config, Dumper=dumper, sort_keys=False, default_flow_style=False)
    write_text_atomic(run_dir / CONFIG_FILE, text)  # a full disk, an unwritable file: the old config stays whole


def load_config(run_dir: Path) -> Config:
    """``<run_dir>/config.yaml`` as the typed :class:`Config` (types checked again by OmegaConf's schema)."""
    return typed_config(read_config(run_dir))


def read_config(run_dir: Path) -> dict[str, Any]:
    """``<run_dir>/config.yaml`` as written: the resolved config its fingerprint is taken of."""
    data: dict[str, Any] = yaml.load((Path(run_dir) / CONFIG_FILE).read_text(),
                                     Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # fmt: skip
    return data


def typed_config(data: dict[str, Any]) -> Config:
    """A resolved config (a plan's ``Point.config``, or a loaded config.yaml) as the typed :class:`Config`."""
    cfg = OmegaConf.merge(OmegaConf.structured(Config), data)
    typed = OmegaConf.to_object(cfg)
    assert isinstance(typed, Config)
    return typed
