"""The launcher interface and its registry: what the sweep, ``rlsweep seeds`` and ``rlsweep status`` ask of a
launcher, whichever runs the sweep.

Before a launcher sees a point, :func:`rlsweep.launching.points.prepare` has decided what runs (completed points
skipped, live ones left alone, each record written) and :func:`~rlsweep.launching.points.process_groups` has
grouped the points one job each. A launcher then only runs those jobs: :meth:`Launcher.run`. Where a scheduler
can end a job without the job writing its end (SLURM's ``scancel`` before the job started, a dead node),
:meth:`Launcher.reconcile` brings the records up to date before anyone reads them. Three launchers implement it:
``local`` (processes on this machine, :mod:`rlsweep.launching.local`), ``slurm`` (job arrays through submitit,
:mod:`rlsweep.launching.slurm`) and ``submitit_local`` (the SLURM path through submitit's local executor,
:mod:`rlsweep.launching.submitit_local`).

A launcher is two things (docs/architecture.md): its settings (``hydra.launcher.*``), typed and checked in the
config layer before any job starts (:data:`rlsweep.config.launchers.LAUNCHERS`), and the module
``rlsweep/launching/<name>.py`` that declares its class as ``LAUNCHER``. The registry reads the one from the other,
importing a launcher's module only when it is used (a local sweep does not import submitit).
"""

from __future__ import annotations

import importlib
from typing import Protocol

from rlsweep.config.launchers import LAUNCHERS as SETTINGS
from rlsweep.config.launchers import LauncherSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import Plan, Point
from rlsweep.launching.points import process_groups

__all__ = ["LAUNCHERS", "Launcher", "launcher_class", "launcher_for", "reconcile", "start"]

# The ``hydra/launcher`` options: those with settings, each the LAUNCHER of its module.
LAUNCHERS = tuple(SETTINGS)


class Launcher(Protocol):
    name: str

    def run(self, p: Plan, groups: list[list[Point]], ledger: Ledger) -> bool:
        """Run the prepared jobs ``groups`` of ``p`` (one process group each) and show where they stand; True when
        it followed them to their end, False when it submitted them to run on their own (nothing to report yet)."""
        ...

    def reconcile(self, ledger: Ledger) -> None:
        """Record the ends the scheduler knows of and the jobs did not write, before the records are read."""
        ...


def launcher_class(name: str) -> type:
    """The class of launcher ``name``: ``LAUNCHER`` of ``rlsweep/launching/<name>.py``, checked to be the launcher
    of that name."""
    if name not in SETTINGS:
        raise KeyError(f"no launcher {name!r}; launchers: {', '.join(LAUNCHERS)}")
    cls = getattr(importlib.import_module(f"rlsweep.launching.{name}"), "LAUNCHER", None)
    if cls is None or getattr(cls, "name", None) != name:
        raise ImportError(f"rlsweep/launching/{name}.py must declare LAUNCHER, a launcher class named {name!r}")
    return cls


def launcher_for(name: str, settings: LauncherSettings | None = None) -> Launcher:
    """The launcher ``name`` (``hydra/launcher=<name>``) with its checked settings (their defaults without)."""
    settings = settings if settings is not None else SETTINGS[name]()
    launcher: Launcher = launcher_class(name)(settings)
    return launcher


def start(p: Plan, todo: list[Point]) -> bool:
    """Run the prepared points ``todo`` of ``p``, one job per process group, with the plan's launcher; False when
    the launcher submitted them to run on their own (SLURM with ``wait=false``). The sweep, ``rlsweep seeds`` and
    ``rlsweep tune`` all start their points here."""
    return launcher_for(p.launcher, p.settings).run(p, process_groups(p, todo), Ledger(p.out_dir))


def reconcile(ledger: Ledger) -> None:
    """Bring the sweep's records up to date with the scheduler of the launcher that last launched it, before they
    are read (``rlsweep status``, ``rlsweep seeds``). A run started inline by ``sweep.py`` without ``-m``, or a sweep
    whose sweep.json names no launcher, has no scheduler to ask."""
    name = ledger.launch_info().get("launcher")
    if name in SETTINGS:
        launcher_for(str(name)).reconcile(ledger)
