"""The launcher interface: one class per ``hydra/launcher`` option, each with the settings the config layer types
and checks, built by name for the sweep, ``rlsweep seeds`` and ``rlsweep status``."""

from __future__ import annotations

from rlsweep.config.launchers import LAUNCHERS as SETTINGS
from rlsweep.config.launchers import SlurmSettings
from rlsweep.launching.launcher import LAUNCHERS, launcher_for


def test_every_launcher_option_has_one_class_and_its_settings() -> None:
    assert set(LAUNCHERS) == set(SETTINGS) == {"local", "slurm", "submitit_local"}
    for name, settings in SETTINGS.items():
        launcher = launcher_for(name)
        assert launcher.name == name and type(launcher.settings) is settings  # type: ignore[attr-defined]
    chosen = SlurmSettings(partition="gpu", wait=False)
    assert launcher_for("slurm", chosen).settings is chosen  # type: ignore[attr-defined]
